import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// A temporary folder for one test, removed by `clean`.
private func scratch(_ name: String) -> String {
    let dir = freshTemporaryPath(name)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A `width`×`height` image of seeded noise in 0...255.
private func noise(_ width: Int, _ height: Int, channels: Int, seed: UInt64) -> Image {
    var g = SeededGenerator(seed: seed)
    return Image(width: width, height: height, channels: channels,
                 pixels: (0..<(width * height * channels)).map { _ in g.uniform(0, 255).rounded() })
}

private func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// The letterbox against PyTorch (antialiased bilinear) and Ultralytics' LetterBox geometry.
@Suite struct LetterboxTests {
    struct Case: Decodable {
        let sourceWidth: Int, sourceHeight: Int, channels: Int, width: Int, height: Int
        let scaledWidth: Int, scaledHeight: Int, left: Int, top: Int
    }

    @Test func letterboxMatchesPyTorchAndUltralytics() throws {
        let (tensors, meta) = try fixture("letterbox.safetensors")
        let cases = try JSONDecoder().decode([Case].self, from: Data(try #require(meta["cases"]).utf8))
        #expect(cases.count == 5)
        for (k, c) in cases.enumerated() {
            let l = Letterbox(sourceWidth: c.sourceWidth, sourceHeight: c.sourceHeight, width: c.width,
                              height: c.height)
            let ours: [Int] = [l.scaledWidth, l.scaledHeight, l.left, l.top]
            let theirs: [Int] = [c.scaledWidth, c.scaledHeight, c.left, c.top]
            #expect(ours == theirs, "case \(k): \(l)")
            let input = try #require(tensors["case\(k).input"])
            let image = Image(width: c.sourceWidth, height: c.sourceHeight, channels: c.channels,
                              pixels: input.scalars)
            let out = l.apply(image)
            #expect(out.width == c.width && out.height == c.height && out.channels == c.channels)
            expectClose(Tensor(shape: [c.height, c.width, c.channels], scalars: out.pixels),
                        tensors["case\(k).output"], 2e-6,
                        "case \(k) \(c.sourceWidth)×\(c.sourceHeight)→\(c.width)×\(c.height)")
            if let plain = tensors["case\(k).plain"] {
                // Enlarging, antialiasing is plain bilinear: the same as PyTorch without it, and as `resized`.
                expectClose(Tensor(shape: [c.height, c.width, c.channels], scalars: out.pixels), plain, 2e-6,
                            "case \(k) plain")
                let ours = image.resizedAntialiased(width: l.scaledWidth, height: l.scaledHeight)
                let old = image.resized(width: l.scaledWidth, height: l.scaledHeight)
                expectClose(Tensor(shape: [ours.pixels.count], scalars: ours.pixels),
                            Tensor(shape: [old.pixels.count], scalars: old.pixels), 2e-6, "case \(k) vs resized")
            }
        }
    }

    @Test func sameSizeIsTheIdentityBitForBit() {
        let image = noise(64, 48, channels: 3, seed: 1)
        let l = Letterbox(sourceWidth: 64, sourceHeight: 48, width: 64, height: 48)
        #expect(l.isIdentity && l.apply(image) == image)
        let b = Box(x: -3.25, y: 47.1, width: 70.3, height: 0.1)   // even outside the image: left as it is
        #expect(l.forward(b) == b && l.back(b) == b)
    }

    @Test func boxesMapForwardAndBackExactly() {
        // 40×30 into 64×64: scale 1.6, 64×48 content, 8 rows of padding above.
        let l = Letterbox(sourceWidth: 40, sourceHeight: 30, width: 64, height: 64)
        #expect(l.scaledWidth == 64 && l.scaledHeight == 48 && l.left == 0 && l.top == 8)
        let b = Box(x: 10, y: 5, width: 20, height: 10)
        let f = l.forward(b)
        for (got, want) in [(f.x, 16.0), (f.y, 16.0), (f.width, 32.0), (f.height, 16.0)] {
            #expect(abs(got - want) < 1e-12, "\(f)")
        }
        // 97×61 into 64×64: 64×40 content (scale 64/97 across, 40/61 down), 12 rows above.
        let m = Letterbox(sourceWidth: 97, sourceHeight: 61, width: 64, height: 64)
        #expect(m.scaledWidth == 64 && m.scaledHeight == 40 && m.top == 12 && m.left == 0)
        for box in [Box(x: 0, y: 0, width: 97, height: 61), Box(x: 13.5, y: 7.25, width: 30.125, height: 2),
                    Box(x: 96, y: 60, width: 1, height: 1)] {
            let there = m.forward(box), back = m.back(there)
            #expect(there.x >= 0 && there.maxX <= 64 + 1e-9 && there.y >= 12 - 1e-9 && there.maxY <= 52 + 1e-9)
            for (a, e) in [(back.x, box.x), (back.y, box.y), (back.width, box.width), (back.height, box.height)] {
                #expect(abs(a - e) < 1e-12, "\(box) → \(there) → \(back)")
            }
        }
        // Back from the padding: clipped to the original image.
        let outside = m.back(Box(x: -10, y: 0, width: 30, height: 20))
        #expect(outside.x == 0 && outside.y == 0 && abs(outside.maxX - 20 / m.scaleX) < 1e-9
                && abs(outside.maxY - 8 / m.scaleY) < 1e-9, "\(outside)")
    }

    @Test func greyAndRGBKeepTheirChannels() {
        for channels in [1, 3] {
            let out = Letterbox(sourceWidth: 30, sourceHeight: 40, width: 32, height: 32)
                .apply(noise(30, 40, channels: channels, seed: 2))
            #expect(out.channels == channels && out.width == 32 && out.height == 32)
            // The margin (24×32 content, 4 columns each side) is padding.
            #expect((0..<32).allSatisfy { y in (0..<channels).allSatisfy { out[x: 0, y: y, c: $0] == 0 } })
            #expect((0..<32).allSatisfy { y in out[x: 31, y: y, c: 0] == Letterbox.padValue })
        }
    }
}

@Suite struct DetectionAugmentationTests {
    @Test func scaleAndCropMovesClipsAndDropsBoxes() {
        let image = noise(64, 64, channels: 1, seed: 3)
        let target = DetectionTarget(boxes: [Box(x: 8, y: 8, width: 16, height: 16),     // → [0, 0, 32, 32]
                                             Box(x: 40, y: 40, width: 20, height: 20),   // → outside
                                             Box(x: 30, y: 0, width: 10, height: 10),    // → 20% left: dropped
                                             Box(x: 20, y: 16, width: 10, height: 10)],  // → [24, 16, 20, 20]
                                     classes: [1, 2, 3, 4])
        let (out, t) = DetectionAugmentation.scaleAndCrop(image, target, factor: 2, offsetX: 16, offsetY: 16,
                                                          minVisible: 0.4)
        #expect(t.classes == [1, 4])
        #expect(t.boxes == [Box(x: 0, y: 0, width: 32, height: 32), Box(x: 24, y: 16, width: 20, height: 20)])
        // Pixel (2y+1, 2x+1)... of the ×2 image: output (x, y) samples source ((x + 16.5) / 2 − 0.5).
        #expect(abs(out[x: 0, y: 0, c: 0] - (0.25 * image[x: 7, y: 7, c: 0] + 0.75 * image[x: 8, y: 7, c: 0]) * 0.25
                    - (0.25 * image[x: 7, y: 8, c: 0] + 0.75 * image[x: 8, y: 8, c: 0]) * 0.75) < 1e-3)
        // Shrinking: the window lies beyond the image, which is placed at (8, 8) with zeros around.
        let (small, s) = DetectionAugmentation.scaleAndCrop(image, target, factor: 0.5, offsetX: -8, offsetY: -8,
                                                            minVisible: 0.4)
        #expect(s.classes == [1, 2, 3, 4] && s.boxes[0] == Box(x: 12, y: 12, width: 8, height: 8))
        #expect(small[x: 0, y: 0, c: 0] == 0 && small[x: 63, y: 63, c: 0] == 0)
    }

    @Test func flipMirrorsX() {
        let image = noise(20, 10, channels: 3, seed: 4)
        let (out, t) = DetectionAugmentation.flipped(
            image, DetectionTarget(boxes: [Box(x: 2, y: 3, width: 5, height: 4)], classes: [0]))
        #expect(t.boxes == [Box(x: 13, y: 3, width: 5, height: 4)])
        #expect((0..<20).allSatisfy { x in out[x: x, y: 5, c: 1] == image[x: 19 - x, y: 5, c: 1] })
        #expect(DetectionAugmentation.flipped(out, t).0 == image)
    }

    @Test func offChangesNothingAndDrawsAreSeeded() throws {
        var g = SeededGenerator(seed: 9)
        let x = Tensor(shape: [2, 8, 8], scalars: (0..<128).map { Float($0 % 7) / 7 })
        let targets = [DetectionTarget(boxes: [Box(x: 1, y: 1, width: 3, height: 3)], classes: [0]),
                       DetectionTarget(boxes: [], classes: [])]
        let none = DetectionAugmentation().apply(x, targets: targets, width: 8, height: 8, channels: 1, generator: &g)
        #expect(none.images == x && none.targets == targets)
        let on = DetectionAugmentation(scale: 0.3, flip: true, brightness: 0.2, contrast: 0.2, saturation: 0.2)
        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5)
        let one = on.apply(x, targets: targets, width: 8, height: 8, channels: 1, generator: &a)
        let two = on.apply(x, targets: targets, width: 8, height: 8, channels: 1, generator: &b)
        #expect(one.images == two.images && one.targets == two.targets && one.images != x)
        #expect(one.images.scalars.allSatisfy { (0...1).contains($0) })
        #expect(throws: DataError.self) { try DetectionAugmentation(scale: 2).validate() }
    }
}

/// Datasets of mixed sizes in the formats people have: COCO files, YOLO (Ultralytics data.yaml), and bad input.
@Suite(.serialized) struct DetectionDataTests {
    /// Writes a YOLO dataset of mixed sizes (grey and RGB) under `dir`: images/{train,val}, labels/{train,val}.
    static func writeYOLO(_ dir: String, names: String = "names: [zero, one]") throws {
        let sizes = [(40, 30), (64, 64), (97, 61), (30, 40), (50, 50), (33, 70)]
        for (k, (w, h)) in sizes.enumerated() {
            let split = k < 4 ? "train" : "val"
            let image = noise(w, h, channels: k % 2 == 0 ? 3 : 1, seed: UInt64(k))
            try FileManager.default.createDirectory(atPath: "\(dir)/images/\(split)", withIntermediateDirectories: true)
            try ImageCodecs.writePNG(image, to: "\(dir)/images/\(split)/im\(k).png")
            try write("\(k % 2) 0.5 0.5 0.4 0.3\n1 0.25 0.75 0.2 0.2\n", to: "\(dir)/labels/\(split)/im\(k).txt")
        }
        try write("path: .\ntrain: images/train\nval: images/val\n\(names)\n", to: dir + "/data.yaml")
    }

    /// Writes a COCO file of mixed sizes beside an images/ folder; returns the annotation file's path.
    static func writeCOCO(_ dir: String, name: String, sizes: [(Int, Int)]) throws -> String {
        var coco = COCODataset(images: [], annotations: [], categories: [.init(id: 3, name: "cat"),
                                                                         .init(id: 7, name: "dog")])
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        for (k, (w, h)) in sizes.enumerated() {
            try ImageCodecs.writePNG(noise(w, h, channels: 3, seed: UInt64(k + 10)),
                                     to: "\(dir)/images/\(name)\(k).png")
            coco.images.append(.init(id: k + 1, fileName: "\(name)\(k).png", width: w, height: h))
            coco.annotations.append(.init(id: k + 1, imageID: k + 1, categoryID: k % 2 == 0 ? 3 : 7,
                                          bbox: Box(x: Double(w) / 4, y: Double(h) / 4, width: Double(w) / 2,
                                                    height: Double(h) / 3)))
        }
        let path = "\(dir)/\(name).json"
        try coco.write(to: path)
        return path
    }

    @Test func cocoOfMixedSizesIsLetterboxedAndScoredInOriginalPixels() throws {
        let dir = scratch("coco-mixed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.writeCOCO(dir, name: "train", sizes: [(40, 30), (64, 64), (97, 61)])
        let data = try DetectionDataset.read(annotations: path, images: dir + "/images")
        #expect(data.width == 64 && data.height == 64 && data.channels == 3 && data.count == 3)   // mixed: 64×64
        #expect(data.letterboxes.map(\.isIdentity) == [false, true, false])
        #expect(data.letterboxes[2].sourceWidth == 97 && data.letterboxes[2].sourceHeight == 61)
        let original = Box(x: 97.0 / 4, y: 61.0 / 4, width: 97.0 / 2, height: 61.0 / 3)
        #expect(data.originalTargets[2].boxes == [original])
        #expect(data.targets[2].boxes == [data.letterboxes[2].forward(original)] && data.targets[2].boxes != [original])
        #expect(data.targets[1] == data.originalTargets[1])
        let truth = data.groundTruth()
        #expect(truth.images.map(\.width) == [40, 64, 97] && truth.images.map(\.height) == [30, 64, 61])
        // The training targets mapped back are the ground truth: AP 1 in the original coordinates.
        let detections = (0..<data.count).flatMap { i in
            zip(data.targets[i].boxes, data.targets[i].classes).map {
                COCODetection(imageID: data.imageIDs[i], categoryID: data.categoryIDs[$1],
                              bbox: data.letterboxes[i].back($0), score: 0.9)
            }
        }
        #expect(COCOEvaluator.evaluate(groundTruth: truth, detections: detections).AP == 1)
        // A given size; and a size the file gets wrong is refused with the file's name.
        let small = try DetectionDataset.read(annotations: path, images: dir + "/images", channels: 1,
                                              size: .init(width: 32, height: 24))
        #expect(small.width == 32 && small.height == 24 && small.channels == 1 && small.letterboxes[1].left == 4)
        var wrong = try COCODataset.read(path)
        wrong.images[0].width = 41
        try wrong.write(to: dir + "/wrong.json")
        #expect(throws: DataError.invalid("\(dir)/images/train0.png: 40×30 image, \(dir)/wrong.json gives its size"
                                          + " as 41×30")) {
            try DetectionDataset.read(annotations: dir + "/wrong.json", images: dir + "/images")
        }
    }

    @Test func detectDataFoldersAreReadAsBefore() throws {
        let dir = scratch("detect-data-same")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let samples = MultiDigitDetection.generate(from: MultiDigitDetectionTests.digits, count: 3, seed: 2)
        _ = try MultiDigitDetection.write(samples, to: dir, split: "train")
        let read = try DetectionDataset.load(directory: dir, split: "train")
        let memory = DetectionDataset(samples: samples)
        // The PNGs' samples over 255, untouched by the (identity) letterbox; the boxes and ground truth as they were.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/train/images").sorted()
        let pixels = try files.flatMap { try ImageCodecs.read("\(dir)/train/images/\($0)").pixels.map { $0 / 255 } }
        #expect(files.count == 3 && read.pixels == pixels && read.targets == memory.targets)
        #expect(read.letterboxes.allSatisfy(\.isIdentity) && read.groundTruth() == memory.groundTruth())
        #expect(read.width == 64 && read.height == 64 && read.channels == 1)
    }

    @Test func yoloDataYAMLWithMixedSizes() throws {
        let dir = scratch("yolo-mixed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeYOLO(dir)
        let file = try YOLO.DataFile.read(dir + "/data.yaml")
        #expect(file.names == ["zero", "one"] && file.train == ["images/train"] && file.val == ["images/val"])
        let coco = try file.read(split: file.train, source: dir + "/data.yaml")
        #expect(coco.images.map(\.fileName) == (0..<4).map { "images/train/im\($0).png" })
        #expect(coco.images.map(\.width) == [40, 64, 97, 30] && coco.annotations.count == 8)
        let data = try DetectionDataset.make(coco, source: "data.yaml", images: file.root,
                                             size: .init(width: 48, height: 32))
        #expect(data.width == 48 && data.height == 32 && data.channels == 3 && data.classNames == ["zero", "one"])
        #expect(data.originalTargets[0].boxes[0] == Box(centerX: 20, centerY: 15, width: 16, height: 9))
        // Names as an {id: name} map; nc must agree.
        try write("train: images/train\nnames:\n  1: one\n  0: zero\nnc: 2\n", to: dir + "/map.yaml")
        #expect(try YOLO.DataFile.read(dir + "/map.yaml").names == ["zero", "one"])
        #expect(try YOLO.DataFile.read(dir + "/map.yaml").val.isEmpty)
    }

    @Test(arguments: [
        ("train: images/train\nval: images/nope\nnames: [a, b]\n", "does not exist"),
        ("train: images/train\nnames: [a, b\n", "malformed YAML"),
        ("train: [images/train\nnames: {0: a}\n", "malformed YAML"),
        ("names: [a, b]\n", "no 'train' folder"),
        ("train: images/train\n", "no 'names'"),
        ("train: images/train\nnames: {0: a, 2: b}\n", "class ids must be 0..<2"),
        ("train: images/train\nnames: [a, b]\nnc: 3\n", "nc 3 differs from the 2 names"),
        ("- just\n- a list\n", "expected a mapping"),
    ])
    func badDataYAMLIsOneError(_ yaml: String, _ expected: String) throws {
        let dir = scratch("yolo-bad-\(abs(yaml.hashValue))")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeYOLO(dir)
        try write(yaml, to: dir + "/bad.yaml")
        do {
            _ = try YOLO.DataFile.read(dir + "/bad.yaml")
            Issue.record("\(yaml) was accepted")
        } catch let error as DataError {
            let message = error.description
            #expect(message.hasPrefix(dir + "/bad.yaml: ") && message.contains(expected) && !message.contains("\n"),
                    "\(message)")
        }
    }

    @Test func badLabelsAndImagesAreOneErrorNamingFileAndLine() throws {
        let dir = scratch("yolo-bad-labels")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeYOLO(dir)
        let label = dir + "/labels/train/im1.txt"
        for (text, expected) in [("0 0.5 0.5 0.4\n", "\(label): line 1: expected 5 fields 'class cx cy w h', got 4"),
                                 ("0 0.5 0.5 0.4 0.3\n2 0.5 0.5 0.1 0.1\n",
                                  "\(label): line 2: class 2 is outside 0..<2"),
                                 ("1 1.5 0.5 0.4 0.3\n", "\(label): line 1: cx 1.5 is outside [0, 1]")] {
            try write(text, to: label)
            let file = try YOLO.DataFile.read(dir + "/data.yaml")
            #expect(throws: DataError.invalid(expected)) { try file.read(split: file.train, source: "data.yaml") }
        }
        // A box reaching outside its image: clipped, with a warning and a count.
        try write("1 0.9 0.5 0.6 0.3\n", to: label)
        let file = try YOLO.DataFile.read(dir + "/data.yaml")
        let coco = try file.read(split: file.train, source: "data.yaml")
        #expect(coco.warnings.count == 1 && coco.warnings[0].contains("1 box reached more than 1 px outside"))
        // COCO: a box wholly outside its image is an error naming the annotation.
        let path = try Self.writeCOCO(dir, name: "c", sizes: [(20, 10)])
        var outside = try COCODataset.read(path)
        outside.annotations[0].bbox = Box(x: 30, y: 0, width: 5, height: 5)
        try outside.write(to: dir + "/outside.json")
        #expect(throws: DataError.invalid("\(dir)/outside.json: annotation 1 box [30.0, 0.0, 5.0, 5.0] lies outside"
                                          + " its 20x10 image 1")) { try COCODataset.read(dir + "/outside.json") }
        // An image of 0 pixels (a PNG whose header says 0×5): one error naming it.
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        png += [0, 0, 0, 0, 0, 0, 0, 5, 8, 0, 0, 0, 0] + [78, 45, 178, 125]   // its CRC: well formed but for the size
        try Data(png).write(to: URL(fileURLWithPath: dir + "/images/train/im9.png"))
        do {
            _ = try file.read(split: file.train, source: "data.yaml")
            Issue.record("a 0-pixel image was accepted")
        } catch {
            #expect("\(error)".contains("im9.png: corrupt PNG data: Invalid IHDR data") && !"\(error)".contains("\n"),
                    "\(error)")
        }
    }
}

/// Training and detection through the CLI on datasets of mixed sizes.
@Suite(.serialized) struct DetectionDataCLITests {
    static let tiny = ["--epochs", "1", "--hidden", "8", "--conv-widths", "4,4,4", "--batch-size", "2"]

    @Test func trainsOnYOLOOfMixedSizesThenDetectsOnPhotosOfAnySize() throws {
        let dir = scratch("cli-yolo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DetectionDataTests.writeYOLO(dir)
        let r = try CLITests().run(["train", "detection", "--data", dir + "/data.yaml", "--size", "32",
                                    "--out", dir + "/run"] + Self.tiny)
        try #require(r.code == 0, "\(r.err)")
        #expect(r.out.contains("(YOLO, 6 images letterboxed to 32×32): 4 training, 2 validation images"), "\(r.out)")
        #expect(r.out.contains("LSTM detector: 32×32"), "\(r.out)")
        let model = try DetectorFile.load(dir + "/run/model.safetensors")
        #expect(model.config.classNames == ["zero", "one"] && model.config.channels == 3)
        // A folder holding data.yaml works too, and the default size for mixed images is 64×64.
        let folder = try CLITests().run(["train", "detection", "--data", dir, "--limit", "2", "--out", dir + "/run2"]
                                        + Self.tiny)
        #expect(folder.code == 0 && folder.out.contains("letterboxed to 64×64"), "\(folder.err)")

        // detect on a 30×40 RGB and a 97×61 grey photo: annotated PNGs of their own sizes, boxes in their pixels.
        try ImageCodecs.writePNG(noise(30, 40, channels: 3, seed: 7), to: dir + "/rgb.png")
        try ImageCodecs.writePNG(noise(97, 61, channels: 1, seed: 8), to: dir + "/grey.png")
        let d = try CLITests().run(["detect", "--model", dir + "/run/model.safetensors", dir + "/rgb.png",
                                    dir + "/grey.png", "--out", dir + "/det", "--threshold", "0"])
        try #require(d.code == 0, "\(d.err)")
        for (name, w, h) in [("rgb", 30, 40), ("grey", 97, 61)] {
            let drawn = try ImageCodecs.read("\(dir)/det/\(name)_detections.png")
            #expect(drawn.width == w && drawn.height == h && drawn.channels == 3, "\(name)")
        }
        let truth = COCODataset(images: [.init(id: 1, fileName: "rgb.png", width: 30, height: 40),
                                         .init(id: 2, fileName: "grey.png", width: 97, height: 61)],
                                annotations: [], categories: [.init(id: 0, name: "zero"), .init(id: 1, name: "one")])
        let found = try COCODetection.read(dir + "/det/detections.json", for: truth)
        #expect(!found.isEmpty)
        for f in found {
            let (w, h) = f.imageID == 1 ? (30.0, 40.0) : (97.0, 61.0)
            #expect(f.bbox.x >= 0 && f.bbox.y >= 0 && f.bbox.maxX <= w + 1e-9 && f.bbox.maxY <= h + 1e-9, "\(f)")
        }
        let zoomed = try CLITests().run(["detect", "--model", dir + "/run/model.safetensors", dir + "/rgb.png",
                                         "--out", dir + "/det2", "--zoom", "2"])
        #expect(zoomed.code == 0 && (try? ImageCodecs.read(dir + "/det2/rgb_detections.png").width) == 60)
    }

    @Test func trainsOnCOCOOfMixedSizesWithAValidationFile() throws {
        let dir = scratch("cli-coco")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let train = try DetectionDataTests.writeCOCO(dir, name: "train",
                                                     sizes: [(40, 30), (64, 64), (97, 61), (20, 50)])
        let val = try DetectionDataTests.writeCOCO(dir, name: "val", sizes: [(33, 33), (70, 20)])
        let r = try CLITests().run(["train", "detection", "--data", train, "--validation", val, "--size", "32x24",
                                    "--out", dir + "/run"] + Self.tiny)
        try #require(r.code == 0, "\(r.err)")
        #expect(r.out.contains("(COCO, 6 images letterboxed to 32×24): 4 training, 2 validation images"), "\(r.out)")
        let log = try String(contentsOfFile: dir + "/run/log.csv", encoding: .utf8)
        #expect(log.split(separator: "\n").count == 2, "\(log)")
        let model = try DetectorFile.load(dir + "/run/model.safetensors")
        #expect(model.config.width == 32 && model.config.height == 24 && model.config.categoryIDs == [3, 7])
        // Without --validation there is none; a bad --size is refused.
        let alone = try CLITests().run(["train", "detection", "--data", train, "--out", dir + "/run2"] + Self.tiny)
        #expect(alone.code == 0 && alone.out.contains("4 training, no validation images"), "\(alone.err)")
        let bad = try CLITests().run(["train", "detection", "--data", train, "--size", "0x9", "--out", dir + "/x"])
        #expect(bad.code != 0 && bad.err.contains("--size must be W or WxH"), "\(bad.err)")
    }

    @Test func augmentationIsKeptAndResumedBitForBit() throws {
        let dir = scratch("cli-augment")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["--train-count", "4", "--test-count", "2", "--hidden", "8", "--conv-widths", "4,4,4",
                      "--batch-size", "2", "--schedule", "constant", "--augment", "--flip", "--jitter", "0.1"]
        let straight = try CLITests().run(["train", "detection", "--epochs", "2", "--out", dir + "/a"] + common)
        try #require(straight.code == 0, "\(straight.err)")
        #expect(straight.out.contains("augmentation: scale ±0.25, flip, jitter 0.1,0.1,0.1"), "\(straight.out)")
        let first = try CLITests().run(["train", "detection", "--epochs", "1", "--out", dir + "/b"] + common)
        try #require(first.code == 0, "\(first.err)")
        let resumed = try CLITests().run(["train", "detection", "--resume", "--epochs", "2", "--out", dir + "/b"])
        try #require(resumed.code == 0, "\(resumed.err)")
        #expect(resumed.out.contains("augmentation: scale ±0.25, flip"), "\(resumed.out)")
        let a = try SafeTensors.read(dir + "/a/last.safetensors").tensors
        let b = try SafeTensors.read(dir + "/b/last.safetensors").tensors
        #expect(a.keys.sorted() == b.keys.sorted() && a.allSatisfy { b[$0.key] == $0.value })
        let other = try CLITests().run(["train", "detection", "--resume", "--epochs", "3",
                                        "--out", dir + "/b", "--jitter", "0.2"])
        #expect(other.code != 0 && other.err.contains("a resumed run must"), "\(other.err)")
    }
}

/// `train detection --validation-split`: epochs scored on training images held out, the dataset's own split scored
/// once at the end (OUT/test.json), as `evaluate --model` scores it.
@Suite(.serialized) struct DetectionValidationSplitTests {
    static func object(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    @Test func splitIsSeededDisjointAndKeepsOrder() throws {
        let dir = scratch("split")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let all = DetectionDataset.synthetic(from: try MNIST.load(directory: MNIST.defaultDirectory(), split: .test,
                                                                  limits: .default).prefix(50), count: 20, epoch: 0)
        let (train, held) = all.splitValidation(fraction: 0.25)
        #expect(train.count == 15 && held.count == 5)
        #expect(Set(train.imageIDs).isDisjoint(with: held.imageIDs) && Set(train.imageIDs + held.imageIDs).count == 20)
        #expect(train.imageIDs == train.imageIDs.sorted() && held.imageIDs == held.imageIDs.sorted())
        let again = all.splitValidation(fraction: 0.25)
        #expect(again.validation.imageIDs == held.imageIDs && again.validation.pixels == held.pixels)
        let k = all.imageIDs.firstIndex(of: held.imageIDs[0])!
        #expect(held.targets[0] == all.targets[k] && held.letterboxes[0] == all.letterboxes[k])
        #expect(held.pixels.prefix(all.imageSize) == all.pixels[(k * all.imageSize)..<((k + 1) * all.imageSize)])
        #expect(all.splitValidation(fraction: 0.25, seed: 9).validation.imageIDs != held.imageIDs)
    }

    @Test func yoloHoldsOutTrainingImagesAndScoresItsValSplitOnce() throws {
        let dir = scratch("cli-valsplit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DetectionDataTests.writeYOLO(dir)
        let data = dir + "/data.yaml"
        let r = try CLITests().run(["train", "detection", "--data", data, "--size", "32", "--validation-split", "0.5",
                                    "--out", dir + "/run"] + DetectionDataCLITests.tiny)
        try #require(r.code == 0, "\(r.err)")
        #expect(r.out.contains(": 2 training, 2 validation (50% of the training images), 2 test images"), "\(r.out)")
        let test = try Self.object(dir + "/run/test.json")
        #expect(test["images"] as? Int == 2 && test["best_epoch"] as? Int == 1, "\(test)")
        // evaluate --model scores the same split with the same model: the same AP.
        let e = try CLITests().run(["evaluate", "--model", dir + "/run/model.safetensors", "--data", data, "--json"])
        try #require(e.code == 0, "\(e.err)")
        let scored = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
        #expect(scored["AP"] as? Double == test["AP"] as? Double)
        #expect(scored["AP50"] as? Double == test["AP50"] as? Double)
        #expect(scored["images"] as? Int == 2 && scored["AP"] as? Double != nil, "\(scored)")
        #expect(r.out.contains(String(format: "test AP %.4f", test["AP"] as! Double)), "\(r.out)")
        // A resumed run keeps its split; another one is refused.
        let other = try CLITests().run(["train", "detection", "--resume", "--epochs", "2", "--validation-split", "0.25",
                                        "--out", dir + "/run"])
        #expect(other.code != 0 && other.err.contains("trained with --validation-split 0.5, not 0.25"), "\(other.err)")
        let bad = try CLITests().run(["train", "detection", "--validation-split", "1", "--out", dir + "/x"])
        #expect(bad.code != 0 && bad.err.contains("--validation-split must be in (0, 1), got 1.0"), "\(bad.err)")
        let neither = try CLITests().run(["evaluate", "--gt", data])
        #expect(neither.code != 0 && neither.err.contains("give --gt and --detections, or --model"), "\(neither.err)")
    }

    @Test func syntheticCanvasesHoldOutTrainingDigits() throws {
        let dir = scratch("cli-valsplit-synthetic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLITests().run(["train", "detection", "--train-count", "8", "--test-count", "4",
                                    "--validation-split", "0.25", "--out", dir + "/run"] + DetectionDataCLITests.tiny)
        try #require(r.code == 0, "\(r.err)")
        #expect(r.out.contains("8 training, 2 validation (canvases of the 25% of MNIST's training digits held out),"
                               + " 4 test images"), "\(r.out)")
        let e = try CLITests().run(["evaluate", "--model", dir + "/run/model.safetensors", "--test-count", "4",
                                    "--json"])
        try #require(e.code == 0, "\(e.err)")
        let scored = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
        let test = try Self.object(dir + "/run/test.json")
        #expect(scored["AP"] as? Double == test["AP"] as? Double && scored["images"] as? Int == 4, "\(scored)")
        // The epoch was scored on canvases of the held-out digits: the logged AP is the model's on them.
        let digits = try MNIST.load(directory: MNIST.defaultDirectory(), split: .train, limits: .default)
        let validation = Recipes.SyntheticDetection.validationSet(from: digits.splitValidation(fraction: 0.25).1,
                                                                  count: 2)
        let model = try DetectorFile.load(dir + "/run/model.safetensors")
        let logged = try LogCSV.column("val_AP", of: dir + "/run/log.csv")
        #expect(logged == [try DetectionEvaluation.run(model, on: validation).metrics.AP], "\(logged)")
        // --no-test-score (tune's trials) leaves the test split alone.
        let quiet = try CLITests().run(["train", "detection", "--train-count", "8", "--test-count", "4",
                                        "--validation-split", "0.25", "--no-test-score", "--out", dir + "/run2"]
                                       + DetectionDataCLITests.tiny)
        #expect(quiet.code == 0 && !quiet.out.contains("test AP")
                && !FileManager.default.fileExists(atPath: dir + "/run2/test.json"), "\(quiet.out)")
    }
}
