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
        let (classes, files) = try list(root)
        var generator = SeededGenerator(seed: seed)
        return try gather(root, classes: classes, files: files, limits: limits) { image in
            try pipeline.apply(image, generator: &generator)
        }
    }

    /// Loads `root/<class>/<image>` of any sizes through `preprocessing`: each image is converted to its channels and
    /// resized to its size, then passed through its steps, with their random steps drawn once per image from `seed`
    /// when `training` (else as `Preprocessing.evaluationPipeline`). With `classNames` (the training split's), the
    /// sub-folders must be among them and keep their labels; otherwise they are the sub-folders in sorted order.
    public static func load(_ root: String, preprocessing: Preprocessing, training: Bool, classNames: [String]? = nil,
                            seed: UInt64 = 0, limits: InputLimits = .default) throws -> ImageDataset {
        let (classes, files) = try list(root, classNames: classNames)
        let pipeline = training ? try preprocessing.trainingPipeline(limits: limits)
            : try preprocessing.evaluationPipeline(limits: limits)
        var generator = SeededGenerator(seed: seed)
        return try gather(root, classes: classes, files: files, limits: limits) { image in
            guard image.width > 0, image.height > 0 else { throw DataError.invalid("an image of 0 pixels") }
            return try pipeline.apply(preprocessing.convert(image), generator: &generator)
        }
    }

    /// The preprocessing `load(_:preprocessing:…)` applies to a training folder when the user names no size or
    /// channels: the images' own size when they all have one, else 32×32; RGB when any image is, else grey. The
    /// folder's images are decoded once to learn that (give both to skip it).
    public static func preprocessing(for root: String, width: Int? = nil, height: Int? = nil, channels: Int? = nil,
                                     steps: String = "scale", limits: InputLimits = .default) throws -> Preprocessing {
        if let width, let height, let channels {
            return Preprocessing(width: width, height: height, channels: channels, steps: steps)
        }
        let (_, files) = try list(root)
        var sizes = Set<[Int]>(), rgb = false
        for (path, _) in files {
            let image = try ImageCodecs.read(path, limits: limits)
            guard image.width > 0, image.height > 0 else {
                throw DataError.invalid("\(path): an image of 0 pixels")
            }
            sizes.insert([image.width, image.height])
            rgb = rgb || image.channels == 3
        }
        let size = sizes.count == 1 ? sizes.first! : [32, 32]
        return Preprocessing(width: width ?? size[0], height: height ?? size[1], channels: channels ?? (rgb ? 3 : 1),
                             steps: steps)
    }

    /// The class sub-folders of `root` (sorted, or `classNames`) and every image file in them, sorted by name.
    static func list(_ root: String, classNames: [String]? = nil) throws -> ([String], [(String, Int)]) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DataError.missing("\(root): no such folder")
        }
        let found = try fm.contentsOfDirectory(atPath: root).filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root + "/" + name, isDirectory: &d) && d.boolValue
        }.sorted()
        let classes = classNames ?? found
        guard classes.count >= 2 else {
            throw DataError.invalid("\(root): needs at least two class sub-folders, found \(classes.count)")
        }
        if let stranger = found.first(where: { !classes.contains($0) }) {
            throw DataError.invalid("\(root)/\(stranger): a class the training images do not have"
                                    + " (they have \(classes.joined(separator: ", ")))")
        }
        var files: [(String, Int)] = []
        for (label, name) in classes.enumerated() where found.contains(name) {
            files += try fm.contentsOfDirectory(atPath: root + "/" + name)
                .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                .map { (root + "/" + name + "/" + $0, label) }
        }
        guard !files.isEmpty else {
            throw DataError.invalid("\(root): no PNG, JPEG, WebP, PGM or PPM images in its class folders")
        }
        return (classes, files)
    }

    /// Reads every file, prepares it with `prepare`, and checks that all come out at one size within the limits.
    static func gather(_ root: String, classes: [String], files: [(String, Int)], limits: InputLimits,
                       prepare: (Image) throws -> Image) throws -> ImageDataset {
        var pixels: [Float] = [], labels: [Int] = []
        var size: (h: Int, w: Int, c: Int)?
        for (path, label) in files {
            let image: Image
            do { image = try prepare(try ImageCodecs.read(path, limits: limits)) } catch let error as DataError {
                // Errors of the preparation itself come without the file's name.
                if case let .invalid(m) = error, !m.hasPrefix(path) { throw DataError.invalid("\(path): \(m)") }
                throw error
            }
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
        let s = size!
        return ImageDataset(height: s.h, width: s.w, channels: s.c, pixels: pixels, labels: labels, classNames: classes)
    }
}
