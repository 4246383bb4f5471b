import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The synthetic multi-digit detection set: determinism, digit counts, exact boxes, COCO output.
@Suite struct MultiDigitDetectionTests {
    /// The embedded MNIST test digits, loaded once.
    static let digits: ImageDataset = try! MNIST.load(directory: FileFormatTests.repoRoot + "/data/mnist", split: .test)

    /// True when pixel (x, y) of a grey image is ink.
    static func ink(_ image: Image, _ x: Int, _ y: Int) -> Bool {
        image.pixels[y * image.width + x] > MultiDigitDetection.inkThreshold
    }

    @Test func sameSeedSameSamples() {
        let a = MultiDigitDetection.generate(from: Self.digits, count: 20, canvas: 64, maxDigits: 5, seed: 7)
        let b = MultiDigitDetection.generate(from: Self.digits, count: 20, canvas: 64, maxDigits: 5, seed: 7)
        let c = MultiDigitDetection.generate(from: Self.digits, count: 20, canvas: 64, maxDigits: 5, seed: 8)
        #expect(a.map(\.image) == b.map(\.image))
        #expect(a.map(\.classes) == b.map(\.classes))
        #expect(a.map(\.boxes) == b.map(\.boxes))
        #expect(a.map(\.image) != c.map(\.image))
    }

    @Test func digitCountsBoxesAndOverlap() {
        let canvas = 64
        let samples = MultiDigitDetection.generate(from: Self.digits, count: 300, canvas: canvas, maxDigits: 5, seed: 1)
        let counts = samples.map(\.boxes.count)
        #expect(counts.allSatisfy { (1...5).contains($0) })
        #expect(Set(counts) == Set(1...5), "digit counts seen: \(Set(counts).sorted())")
        for (k, s) in samples.enumerated() {
            #expect(s.image.width == canvas && s.image.height == canvas && s.image.channels == 1)
            #expect(s.image.pixels.allSatisfy { (0...1).contains($0) })
            #expect(s.classes.allSatisfy { (0...9).contains($0) })
            for b in s.boxes {
                #expect(b.x >= 0 && b.y >= 0 && b.width >= 1 && b.height >= 1
                        && b.maxX <= Double(canvas) && b.maxY <= Double(canvas),
                        "canvas \(k): box \(b) leaves the canvas")
                #expect(b.x == b.x.rounded() && b.y == b.y.rounded()
                        && b.width == b.width.rounded() && b.height == b.height.rounded())
                // Tight: each of the four border lines of the box holds ink.
                let x0 = Int(b.x), y0 = Int(b.y), x1 = Int(b.maxX) - 1, y1 = Int(b.maxY) - 1
                #expect((x0...x1).contains { Self.ink(s.image, $0, y0) }
                        && (x0...x1).contains { Self.ink(s.image, $0, y1) }
                        && (y0...y1).contains { Self.ink(s.image, x0, $0) }
                        && (y0...y1).contains { Self.ink(s.image, x1, $0) },
                        "canvas \(k): box \(b) has a border line without ink")
            }
            // Every ink pixel belongs to some digit, so lies inside some box.
            for y in 0..<canvas {
                for x in 0..<canvas where Self.ink(s.image, x, y) {
                    #expect(s.boxes.contains { Double(x) >= $0.x && Double(x) < $0.maxX
                                                   && Double(y) >= $0.y && Double(y) < $0.maxY },
                            "canvas \(k): ink at (\(x), \(y)) outside every box")
                }
            }
            for i in 0..<s.boxes.count {
                for j in 0..<i {
                    #expect(s.boxes[i].iou(s.boxes[j]) <= Double(MultiDigitDetection.maxOverlap))
                }
            }
        }
    }

    @Test func singleDigitBoxIsTheInkBoundingBox() {
        // One digit per canvas: the box is exactly the bounding box of all ink, and its size follows the scale range.
        for s in MultiDigitDetection.generate(from: Self.digits, count: 100, canvas: 48, maxDigits: 1, seed: 3) {
            var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
            for y in 0..<48 { for x in 0..<48 where Self.ink(s.image, x, y) {
                minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
            } }
            #expect(s.boxes.count == 1)
            let b = s.boxes[0]
            #expect(b == Box(x: Double(minX), y: Double(minY), width: Double(maxX - minX + 1),
                             height: Double(maxY - minY + 1)))
            let largest = Double((28 * MultiDigitDetection.scaleRange.upperBound).rounded())
            #expect(b.width <= largest && b.height <= largest)
        }
    }

    @Test func smallCanvasKeepsDigitsInside() {
        for s in MultiDigitDetection.generate(from: Self.digits, count: 30, canvas: 30, maxDigits: 3, seed: 4) {
            #expect(!s.boxes.isEmpty)
            #expect(s.boxes.allSatisfy { $0.x >= 0 && $0.y >= 0 && $0.maxX <= 30 && $0.maxY <= 30 })
        }
    }

    @Test func writesCOCOAnnotationsAndPNGs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detect-data-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let samples = MultiDigitDetection.generate(from: Self.digits, count: 12, canvas: 64, maxDigits: 5, seed: 5)
        let path = try MultiDigitDetection.write(samples, to: dir, split: "train")
        #expect(path == dir + "/train/annotations.json")

        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
                                    as? [String: Any])
        let images = try #require(json["images"] as? [[String: Any]])
        let annotations = try #require(json["annotations"] as? [[String: Any]])
        let categories = try #require(json["categories"] as? [[String: Any]])
        #expect(images.count == 12)
        #expect(annotations.count == samples.reduce(0) { $0 + $1.boxes.count })
        #expect(categories.map { $0["id"] as? Int } == (0...9).map { $0 })
        #expect(categories.map { $0["name"] as? String } == (0...9).map { String($0) })
        #expect(images.map { $0["id"] as? Int } == Array(1...12))
        #expect(images[0]["file_name"] as? String == "000001.png" && images[11]["file_name"] as? String == "000012.png")
        #expect(images.allSatisfy { $0["width"] as? Int == 64 && $0["height"] as? Int == 64 })
        #expect(Set(annotations.compactMap { $0["id"] as? Int }) == Set(1...annotations.count))

        var next = 0
        for (k, s) in samples.enumerated() {
            for (b, c) in zip(s.boxes, s.classes) {
                let a = annotations[next]
                next += 1
                #expect(a["image_id"] as? Int == k + 1 && a["category_id"] as? Int == c && a["iscrowd"] as? Int == 0)
                #expect((a["bbox"] as? [Double]) == [b.x, b.y, b.width, b.height])
                #expect((a["area"] as? Double) == b.area)
            }
            let png = try ImageCodecs.read(dir + "/train/images/" + String(format: "%06d.png", k + 1))
            #expect(png.width == 64 && png.height == 64 && png.channels == 1)
            #expect(zip(png.pixels, s.image.pixels).allSatisfy { abs($0 - $1 * 255) <= 0.5 + 1e-3 })
        }
    }

    @Test func rejectsClassesThatAreNotDigits() {
        let bad = DetectionSample(image: Image(width: 8, height: 8, channels: 1),
                                  boxes: [Box(x: 1, y: 1, width: 2, height: 2)], classes: [10])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("detect-bad-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: DataError.self) { try MultiDigitDetection.write([bad], to: dir, split: "test") }
    }
}
