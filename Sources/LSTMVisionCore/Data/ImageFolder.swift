import Foundation

/// An image-folder dataset (one sub-folder per class, as torchvision's `ImageFolder`): every PNG, JPEG, WebP,
/// PGM or PPM file is read, passed through a preprocessing pipeline, and must come out at one size; the decoded
/// images together may hold at most `limits.maxDatasetBytes` (the dataset is kept in memory).
public enum ImageFolder {
    static let extensions: Set<String> = ["png", "jpg", "jpeg", "webp", "pgm", "ppm"]

    /// Loads `root/<class>/<image>`; classes are the sub-folder names in sorted order. The pipeline
    /// should end in `scale` (or `normalize`) so pixels reach the model in the range it was trained on.
    public static func load(_ root: String, pipeline: ImagePipeline, seed: UInt64 = 0,
                            limits: InputLimits = .default) throws -> ImageDataset {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DataError.missing("\(root): no such folder")
        }
        let classes = try fm.contentsOfDirectory(atPath: root).filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root + "/" + name, isDirectory: &d) && d.boolValue
        }.sorted()
        guard classes.count >= 2 else {
            throw DataError.invalid("\(root): needs at least two class sub-folders, found \(classes.count)")
        }
        var generator = SeededGenerator(seed: seed)
        var pixels: [Float] = [], labels: [Int] = []
        var size: (h: Int, w: Int, c: Int)?
        for (label, name) in classes.enumerated() {
            let files = try fm.contentsOfDirectory(atPath: root + "/" + name)
                .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            for file in files {
                let path = root + "/" + name + "/" + file
                let image = try pipeline.apply(try ImageCodecs.read(path, limits: limits), generator: &generator)
                if let s = size {
                    guard (image.height, image.width, image.channels) == s else {
                        throw DataError.invalid("\(path): is \(image.width)×\(image.height)×\(image.channels)"
                                                + " after preprocessing, other images are \(s.w)×\(s.h)×\(s.c);"
                                                + " add resize=WxH")
                    }
                } else { size = (image.height, image.width, image.channels) }
                guard (pixels.count + image.pixels.count) * MemoryLayout<Float>.size <= limits.maxDatasetBytes else {
                    let what = "\(limits.maxDatasetBytes) bytes in memory (after \(labels.count) images"
                    throw DataError.tooLarge("\(root): its images take more than \(what); maxDatasetBytes)",
                                             limit: .maxDatasetBytes)
                }
                pixels += image.pixels
                labels.append(label)
            }
        }
        guard let s = size else {
            throw DataError.invalid("\(root): no PNG, JPEG, WebP, PGM or PPM images in its class folders")
        }
        return ImageDataset(height: s.h, width: s.w, channels: s.c, pixels: pixels, labels: labels, classNames: classes)
    }
}
