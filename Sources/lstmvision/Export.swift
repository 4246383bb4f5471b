import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision export`: a classifier or detector file as an ONNX model (docs/onnx.md), optionally with sample inputs
/// and LSTMVision's outputs for them, to check a runtime against.
struct Export: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Export a classifier or detector as an ONNX model (ONNX Runtime runs it; see docs/onnx.md).",
        discussion: """
            The graph takes `images` [N, H, W·C] float32 (N dynamic) as the model does and gives its raw outputs: \
            logits [N, classes], or a detector's [K, N·cells, 6 + classes] (the post-processing is in \
            docs/onnx.md); a detector's refiner reads `crops_by_rows` and `crops_by_columns`. Recurrent layers are \
            ONNX LSTM nodes. --samples N also writes <out without .onnx>.samples.safetensors: N real inputs \
            (classifiers: the MNIST test split or --images; detectors: --images, --annotations, or synthetic \
            digit canvases) and LSTMVision's outputs for them.
            """)

    @Option(help: "Model file (safetensors, classifier or detector), or the name of a model in models/.")
    var model: String
    @Option(help: "The ONNX file to write.") var out: String
    @Option(help: ArgumentHelp("ONNX opset (\(ONNXExport.opsets.lowerBound)...\(ONNXExport.opsets.upperBound)).",
                               valueName: "n"))
    var opset: Int = ONNXExport.defaultOpset
    @Option(help: ArgumentHelp("Also write this many sample inputs with LSTMVision's outputs for them.",
                               valueName: "n"))
    var samples: Int?
    @Option(help: ArgumentHelp("The samples' images: an image folder (searched recursively, files in name order).",
                               valueName: "dir"))
    var images: String?
    @Option(help: ArgumentHelp("A detector's samples: the images of a COCO annotation file (images/ beside it).",
                               valueName: "file"))
    var annotations: String?
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard ONNXExport.opsets.contains(opset) else {
            throw ValidationError(ONNXExportError.unsupportedOpset(opset).description)
        }
        if let samples, !(1...4096).contains(samples) {
            throw ValidationError("--samples must be in 1...4096, got \(samples)")
        }
        guard samples != nil || (images == nil && annotations == nil) else {
            throw ValidationError("--images and --annotations choose the samples' images; give --samples N too")
        }
        guard images == nil || annotations == nil else {
            throw ValidationError("give --images or --annotations, not both")
        }
    }

    /// Where the samples go: `out` without its .onnx extension, then .samples.safetensors.
    var samplesPath: String {
        (out.lowercased().hasSuffix(".onnx") ? String(out.dropLast(5)) : out) + ".samples.safetensors"
    }

    func run() throws {
        let path = try ModelLocator.path(model)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError("\(out): is a folder; --out names the ONNX file to write")
        }
        let metadata = try SafeTensors.read(path, limits: limits.value).metadata
        let onnx: Onnx_ModelProto
        var sampleTensors: [String: Tensor]?
        let what: String
        if metadata[DetectorFile.configKey] != nil {
            let detector = try DetectorFile.load(path, limits: limits.value)
            onnx = try ONNXExport.model(for: detector, opset: opset)
            if let samples { sampleTensors = try detectorSamples(detector, count: samples) }
            what = "detector (\(detector.config.encoderDescription)\(detector.refiner == nil ? "" : ", refiner"))"
        } else {
            guard annotations == nil else {
                throw CLIError("--annotations chooses a detector's samples; \(path) holds a classifier (use --images)")
            }
            let predictor = try Predictor.load(path, limits: limits.value)
            onnx = try ONNXExport.model(for: predictor.model, opset: opset)
            if let samples { sampleTensors = try classifierSamples(predictor, count: samples) }
            what = "\(predictor.model.config.kind.rawValue) classifier"
        }
        let bytes = try ONNXExport.serialized(onnx)
        // The samples first; when the ONNX file then cannot be written, they go again: nothing half-written stays.
        if let sampleTensors {
            try SafeTensors.write(sampleTensors, metadata: ["lstmvision.source": path], to: samplesPath)
        }
        do { try AtomicFile.write(bytes, to: out) } catch {
            if sampleTensors != nil { unlink(samplesPath) }
            throw error
        }
        let lstms = onnx.graph.node.filter { $0.opType == "LSTM" }.count
        print("\(path): \(what) → \(out) (opset \(opset), IR \(ONNXExport.irVersion(forOpset: opset)),"
              + " \(onnx.graph.node.count) nodes, \(lstms) LSTM)"
              + (sampleTensors.map { " and \(samplesPath) (\($0["input"]!.shape[0]) samples)" } ?? ""))
    }

    /// The image files under `folder` (recursively), sorted by path.
    func imageFiles(_ folder: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(folder): no such folder")
        }
        let kinds: Set<String> = ["png", "jpg", "jpeg", "webp", "pgm", "ppm"]
        let files = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [])
            .filter { kinds.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard !files.isEmpty else { throw CLIError("\(folder): no image files (PNG, JPEG, WebP, PGM, PPM)") }
        return files.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// `input`: the first `count` images (MNIST test split, or --images) as the model's preprocessing prepares them;
    /// `output`: the model's logits for them.
    func classifierSamples(_ predictor: Predictor, count: Int) throws -> [String: Tensor] {
        let c = predictor.model.config
        let input: Tensor
        if let images {
            let files = Array(try imageFiles(images).prefix(count))
            let decoded = try files.map { try ImageCodecs.read($0, limits: limits.value) }
            input = try predictor.inputs(decoded, names: files, limits: limits.value)
        } else {
            let test = try MNIST.load(directory: MNIST.defaultDirectory(), split: .test, limits: limits.value)
            guard c.height == test.height, c.width == test.width, c.channels == test.channels else {
                throw CLIError("the model takes \(c.width)×\(c.height)×\(c.channels) images, not MNIST's;"
                               + " give --images DIR for its samples")
            }
            input = test.batch(0..<min(count, test.count)).images
        }
        let output = Autograd.withoutGradients { predictor.model(Variable(input)).value }
        return ["input": input, "output": output]
    }

    /// `input`: the first `count` images (--images, --annotations, or synthetic canvases for a grey 64×64
    /// detector) letterboxed as `detect` does, pixels in [0, 1]; `output`: the raw outputs; with a refiner, the
    /// crops around the first stage's detections (or a few fixed boxes when it finds none) and its outputs.
    func detectorSamples(_ detector: LSTMDetector, count: Int) throws -> [String: Tensor] {
        let c = detector.config
        var pixels: [Float] = []
        if images != nil || annotations != nil {
            for file in try sampleFiles().prefix(count) {
                let image = try ImageCodecs.read(file, limits: limits.value)
                let box = Letterbox(sourceWidth: image.width, sourceHeight: image.height, width: c.width,
                                    height: c.height)
                pixels += box.apply(image.converted(channels: c.channels)).pixels.map { $0 / 255 }
            }
        } else {
            guard c.channels == 1, c.width == 64, c.height == 64 else {
                throw CLIError("synthetic samples are 64×64 grey digit canvases; the detector takes"
                               + " \(c.width)×\(c.height)×\(c.channels): give --images or --annotations")
            }
            let digits = try MNIST.load(directory: MNIST.defaultDirectory(), split: .test, limits: limits.value)
            pixels = MultiDigitDetection.generate(from: digits.prefix(1000), count: count, canvas: 64, seed: 20)
                .flatMap(\.image.pixels)
        }
        let n = pixels.count / (c.height * c.width * c.channels)
        let input = Tensor(shape: [n, c.height, c.width * c.channels], scalars: pixels)
        let output = try Autograd.withoutGradients { try detector(Variable(input)) }.value
        var out = ["input": input, "output": output]
        if let refiner = detector.refiner {
            let found = PostProcessing()(output, config: c)
            var owners = found.enumerated().flatMap { k, d in [Int](repeating: k, count: d.count) }
            var boxes = found.flatMap { $0.map(\.box) }
            if boxes.isEmpty {
                let w = Double(c.width), h = Double(c.height)
                boxes = [Box(x: w * 0.1, y: h * 0.2, width: w * 0.3, height: h * 0.4),
                         Box(x: w * 0.5, y: h * 0.1, width: w * 0.25, height: h * 0.25),
                         Box(x: w * 0.7, y: h * 0.6, width: w * 0.5, height: h * 0.35)]
                owners = boxes.indices.map { $0 % n }
            }
            let m = min(boxes.count, BoxRefiner.cropsAtOnce)
            let crops = refiner.crops(input, owners: Array(owners.prefix(m)), boxes: Array(boxes.prefix(m)))
            out["crops_by_rows"] = crops.byRows
            out["crops_by_columns"] = crops.byColumns
            out["refiner_output"] = Autograd.withoutGradients { refiner(crops) }.value
        }
        return out
    }

    /// A detector's sample image files: --images' files, or the images of --annotations' COCO file.
    func sampleFiles() throws -> [String] {
        if let images { return try imageFiles(images) }
        let coco = try COCODataset.read(annotations!, limits: limits.value)
        let folder = (annotations! as NSString).deletingLastPathComponent
        let beside = (folder as NSString).appendingPathComponent("images")
        let base = FileManager.default.fileExists(atPath: beside) ? beside : folder
        guard !coco.images.isEmpty else { throw CLIError("\(annotations!): no images") }
        return coco.images.map { (base as NSString).appendingPathComponent($0.fileName) }
    }
}
