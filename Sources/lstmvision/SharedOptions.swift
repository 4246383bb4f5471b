import ArgumentParser
import Foundation
import LSTMVision

/// Where the images come from: MNIST IDX files (the embedded copy by default), or an image folder.
struct DataOptions: ParsableArguments {
    @Option(help: "Folder holding the MNIST IDX files (.gz or plain). Default: the embedded data/mnist.")
    var data: String?

    @Option(help: "Image-folder dataset instead of MNIST: DIR/train/<class>/*.png|jpg|pgm|ppm and DIR/test/<class>/...")
    var images: String?

    @Option(help: "Preprocessing of --images, e.g. 'grey,resize=28x28,scale' (steps: scale, normalize=M/S, grey, rgb2hsv, hsv2rgb, rgb2ycbcr, ycbcr2rgb, crop=WxH, randomcrop=WxH, resize=WxH, shift=K, rotate=D).")
    var transform: String = "scale"

    @Option(help: "Use only the first N images of each split (quick runs).")
    var limit: Int?

    var directory: String { images ?? data ?? MNIST.defaultDirectory() }

    func load(_ split: MNIST.Split) throws -> ImageDataset {
        if let limit, limit <= 0 { throw CLIError("--limit must be positive, got \(limit)") }
        let set: ImageDataset
        if let images {
            if data != nil { throw CLIError("--data and --images exclude each other") }
            set = try ImageFolder.load(images + "/" + split.rawValue, pipeline: try ImagePipeline(spec: transform))
        } else {
            set = try MNIST.load(directory: directory, split: split)
        }
        return limit.map { set.prefix($0) } ?? set
    }
}

/// Sets the number of BLAS threads (default: all cores).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for matrix products (default: all cores).")
    var threads: Int?

    func apply() throws {
        if let threads {
            guard threads > 0, threads <= 256 else { throw CLIError("--threads must be in 1...256, got \(threads)") }
            BLAS.setThreads(threads)
        }
    }
}

/// Prints a value as one line of JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}
