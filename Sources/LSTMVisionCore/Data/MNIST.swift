import Foundation

/// MNIST from its four IDX files (plain or .gz), pixels scaled to [0, 1]. The project embeds a copy
/// under `data/mnist`, the default dataset.
public enum MNIST {
    public enum Split: String, Sendable { case train, test }

    /// Loads one split from `directory`, checking that images and labels agree; files are read within `limits`.
    public static func load(directory: String, split: Split, limits: InputLimits = .default) throws -> ImageDataset {
        let prefix = split == .train ? "train" : "t10k"
        let imagesPath = try find(directory, "\(prefix)-images-idx3-ubyte")
        let labelsPath = try find(directory, "\(prefix)-labels-idx1-ubyte")
        let images = try IDX.read(imagesPath, limits: limits), labels = try IDX.read(labelsPath, limits: limits)
        guard images.dimensions.count == 3 else {
            throw DataError.invalid("\(imagesPath): MNIST images must have 3 dimensions, found \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw DataError.invalid("\(labelsPath): MNIST labels must have 1 dimension, found \(labels.dimensions)")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError.invalid("\(labelsPath): \(labels.dimensions[0]) labels for \(images.dimensions[0]) images"
                                    + " in \(imagesPath)")
        }
        if let bad = labels.bytes.firstIndex(where: { $0 > 9 }) {
            throw DataError.invalid("\(labelsPath): label \(labels.bytes[bad]) at index \(bad) is out of range 0...9")
        }
        let pixels = images.bytes.map { Float($0) / 255 }
        return ImageDataset(height: images.dimensions[1], width: images.dimensions[2], channels: 1, pixels: pixels,
                            labels: labels.bytes.map(Int.init), classNames: (0...9).map(String.init))
    }

    private static func find(_ directory: String, _ base: String) throws -> String {
        for name in [base + ".gz", base] {
            let p = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw DataError.missing("\((directory as NSString).appendingPathComponent(base)).gz: no such file"
                                + " (nor \(base))")
    }

    /// The embedded copy: `$LSTMVISION_DATA`, else `data/mnist` under the working directory or above the executable.
    public static func defaultDirectory() -> String {
        ProcessInfo.processInfo.environment["LSTMVISION_DATA"] ?? EmbeddedFolder.find("data/mnist")
    }
}
