import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision detect`: runs a trained LSTM detector on image files, writes each image with its boxes,
/// labels and scores drawn, and all detections as a COCO results file (`OUT/detections.json`) that
/// `lstmvision evaluate` scores.
struct Detect: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Detect objects in images with a trained LSTM detector; write annotated PNGs and COCO results JSON.",
        discussion: """
            Images of any size are letterboxed to the detector's input (resized keeping their aspect, padded; see \
            docs/detection-data.md), converted to its channels and scaled to [0,1]; boxes are mapped back, drawn on \
            the original image and written in its pixels. A PyTorch state_dict (no metadata) is read as its tensors \
            describe; --image-size, --boxes-per-cell, --grid-stride and --refiner-context give what they leave open. \
            Image ids in detections.json are the images' positions (1, 2, ...) unless --annotations gives a COCO \
            file to take them from; with --annotations and no IMAGE arguments, every image of that file is read \
            (from the images folder beside it, as detect-data writes them).
            """)

    @Argument(help: "Image files (PNG, JPEG, WebP, PGM, PPM).") var files: [String] = []
    @Option(help: "Detector file (safetensors) written by train detection, or a name in models/.") var model: String
    @Option(help: "Output folder: <name>_detections.png per image and detections.json.") var out: String = "runs/detect"
    @Option(help: "COCO annotation file whose image ids (matched by file name) the results use.")
    var annotations: String?
    @Option(help: "Lowest score kept in detections.json and the JSON output (low, for COCO AP).")
    var threshold: Double = 0.001
    @Option(help: "Lowest score drawn on the images.") var drawThreshold: Double = 0.5
    @Option(help: "Boxes of one class overlapping a better one by more than this IoU are merged into it.")
    var mergeIou: Double = 0.5
    @Option(help: "IoU above which non-maximum suppression drops the worse of two boxes of one class.")
    var nmsIou: Double = 0.5
    @Option(help: "Enlarge the annotated images this many times (1: the image's own size).") var zoom: Int = 1
    @Flag(help: "Print one JSON object per image.") var json = false
    @Option(help: ArgumentHelp("Input size of a detector file without LSTMVision's metadata (a PyTorch state_dict;"
                               + " default 64x64).", valueName: "WxH"))
    var imageSize: ImageShape?
    @Option(help: "Boxes per cell (K) of a detector file without metadata.") var boxesPerCell: Int = 3
    @Option(help: "Grid stride of a detector file without metadata, where its convolutions leave it open.")
    var gridStride: Int?
    @Option(help: "Refiner context (crop side / box side) of a detector file without metadata.")
    var refinerContext: Double = 1.5
    @OptionGroup var limits: LimitOptions

    /// What the shapes of a detector file without metadata leave open.
    var hints: ModelFileHints {
        ModelFileHints(width: imageSize?.width, height: imageSize?.height, boxesPerCell: boxesPerCell,
                       stride: gridStride, refinerContext: refinerContext)
    }

    struct Result: Codable {
        let file: String
        let imageID: Int
        let detections: [Found]

        enum CodingKeys: String, CodingKey { case file, detections, imageID = "image_id" }
    }

    struct Found: Codable {
        let label: String
        let categoryID: Int
        let score: Double
        let bbox: Box

        enum CodingKeys: String, CodingKey { case label, score, bbox, categoryID = "category_id" }
    }

    func validate() throws {
        for (name, value) in [("--threshold", threshold), ("--draw-threshold", drawThreshold),
                              ("--merge-iou", mergeIou), ("--nms-iou", nmsIou)] {
            guard (0...1).contains(value) else { throw ValidationError("\(name) must be in [0, 1], got \(value)") }
        }
        guard (1...16).contains(zoom) else { throw ValidationError("--zoom must be in 1...16, got \(zoom)") }
        guard (1...64).contains(boxesPerCell) else {
            throw ValidationError("--boxes-per-cell must be in 1...64, got \(boxesPerCell)")
        }
        guard (1...8).contains(refinerContext) else {
            throw ValidationError("--refiner-context must be in [1, 8], got \(refinerContext)")
        }
    }

    func run() throws {
        let detector = try DetectorFile.load(try ModelLocator.path(model), limits: limits.value, hints: hints)
        let c = detector.config
        let (paths, ids) = try imagesAndIDs()
        let postProcessing = PostProcessing(scoreThreshold: threshold, mergeIoU: mergeIou, nmsIoU: nmsIou)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var results: [COCODetection] = []
        // In chunks: the originals may be large; only the letterboxed inputs of one chunk go to the detector.
        var chunk: [(file: String, image: Image, letterbox: Letterbox, boxes: [ScoredBox])] = []
        for (k, file) in paths.enumerated() {
            let image = try ImageCodecs.read(file, limits: limits.value)
            chunk.append((file, image, Letterbox(sourceWidth: image.width, sourceHeight: image.height,
                                                 width: c.width, height: c.height), []))
            guard chunk.count == 32 || k == paths.count - 1 else { continue }
            let inputs = chunk.flatMap { $0.letterbox.apply($0.image.converted(channels: c.channels)).pixels }
            let found = try detector.detect(Tensor(shape: [chunk.count, c.height, c.width * c.channels],
                                                   scalars: inputs.map { $0 / 255 }),
                                            postProcessing: postProcessing)
            for i in chunk.indices {
                chunk[i].boxes = found[i].map { var d = $0; d.box = chunk[i].letterbox.back(d.box); return d }
            }
            try write(chunk, firstIndex: k + 1 - chunk.count, ids: ids, config: c, results: &results)
            chunk.removeAll()
        }
        let resultsPath = (out as NSString).appendingPathComponent("detections.json")
        try COCODetection.write(results, to: resultsPath)
        if !json {
            print("\(results.count) detections of \(paths.count) images (scores ≥ \(threshold)) → \(resultsPath)")
        }
    }

    /// Draws, prints and collects the detections of images `firstIndex...` (boxes in their original pixels).
    func write(_ chunk: [(file: String, image: Image, letterbox: Letterbox, boxes: [ScoredBox])], firstIndex: Int,
               ids: [Int], config c: DetectorConfig, results: inout [COCODetection]) throws {
        for (j, item) in chunk.enumerated() {
            let k = firstIndex + j, file = item.file, boxes = item.boxes
            results += boxes.map {
                COCODetection(imageID: ids[k], categoryID: c.categoryIDs[$0.classIndex], bbox: $0.box, score: $0.score)
            }
            let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            let drawn = annotated(item.image, boxes.filter { $0.score >= drawThreshold }, classNames: c.classNames,
                                  scale: zoom)
            let path = (out as NSString).appendingPathComponent("\(stem)_detections.png")
            try ImageCodecs.writePNG(drawn, to: path)
            if json {
                try printJSON(Result(file: file, imageID: ids[k], detections: boxes.map {
                    Found(label: c.classNames[$0.classIndex], categoryID: c.categoryIDs[$0.classIndex],
                          score: $0.score, bbox: $0.box)
                }))
            } else {
                let shown = boxes.filter { $0.score >= drawThreshold }
                print("\(file): " + (shown.isEmpty ? "nothing above \(drawThreshold)" : shown.map {
                    String(format: "%@ %.2f at [%.0f, %.0f, %.0f, %.0f]", c.classNames[$0.classIndex], $0.score,
                           $0.box.x, $0.box.y, $0.box.width, $0.box.height)
                }.joined(separator: ", ")) + " → \(path)")
            }
        }
    }

    /// The image files to read and their COCO image ids.
    func imagesAndIDs() throws -> (paths: [String], ids: [Int]) {
        guard let annotations else {
            guard !files.isEmpty else { throw CLIError("no image files given (nor --annotations)") }
            return (files, Array(1...files.count))
        }
        let coco = try COCODataset.read(annotations, limits: limits.value)
        guard !files.isEmpty else {
            let folder = (annotations as NSString).deletingLastPathComponent
            let images = (folder as NSString).appendingPathComponent("images")
            let base = FileManager.default.fileExists(atPath: images) ? images : folder
            return (coco.images.map { (base as NSString).appendingPathComponent($0.fileName) }, coco.images.map(\.id))
        }
        let byName = Dictionary(coco.images.map { (($0.fileName as NSString).lastPathComponent, $0.id) },
                                uniquingKeysWith: { a, _ in a })
        let ids = try files.map { file in
            guard let id = byName[(file as NSString).lastPathComponent] else {
                throw CLIError("\(file): not an image of \(annotations)")
            }
            return id
        }
        return (files, ids)
    }
}

/// An RGB copy of `image` (pixels in 0...255), enlarged `scale` times (default: ×4 when small, so that labels are
/// readable), with each detection drawn as a box in its class's colour and a "name score" label.
func annotated(_ image: Image, _ detections: [ScoredBox], classNames: [String], scale: Int? = nil) -> Image {
    let scale = scale ?? max(1, min(4, 256 / max(image.width, image.height, 1)))
    var out = Image(width: image.width * scale, height: image.height * scale, channels: 3)
    for y in 0..<out.height {
        for x in 0..<out.width {
            for ch in 0..<3 {
                out[x: x, y: y, c: ch] = image[x: x / scale, y: y / scale, c: image.channels == 3 ? ch : 0]
            }
        }
    }
    for d in detections.reversed() {   // the best drawn last, on top
        let colour = Colour.palette[d.classIndex % Colour.palette.count]
        let x = Int((d.box.x * Double(scale)).rounded()), y = Int((d.box.y * Double(scale)).rounded())
        let w = Int((d.box.width * Double(scale)).rounded()), h = Int((d.box.height * Double(scale)).rounded())
        out.drawBox(x: x, y: y, width: w, height: h, colour: colour, thickness: 2)
        let label = String(format: "%@ %.2f", classNames[d.classIndex], d.score)
        let labelHeight = BitmapFont.glyphHeight + 2
        out.drawLabel(label, x: x, y: y >= labelHeight ? y : y + labelHeight, colour: colour)
    }
    return out
}
