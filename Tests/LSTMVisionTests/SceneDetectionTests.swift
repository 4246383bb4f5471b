import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The photographic scenes set: determinism, sizes, boxes, colour, disjoint backgrounds, COCO output.
@Suite struct SceneDetectionTests {
    /// The embedded MNIST test digits and photos, loaded once.
    static let digits: ImageDataset = try! MNIST.load(directory: FileFormatTests.repoRoot + "/data/mnist", split: .test)
    static let photoDirectory = FileFormatTests.repoRoot + "/data/photos"
    static let trainPhotos = try! SceneDetection.loadPhotos(directory: photoDirectory, split: "train")
    static let testPhotos = try! SceneDetection.loadPhotos(directory: photoDirectory, split: "test")

    /// A fingerprint of the scenes' pixels, sizes, boxes, classes and photos.
    static func fingerprint(_ scenes: [SceneDetection.Scene]) -> String {
        var f = Fingerprint()
        for s in scenes {
            f.add(s.sample.image.width)
            f.add(s.sample.image.height)
            f.add(s.sample.image.pixels)
            f.add(s.sample.boxes.flatMap { [Float($0.x), Float($0.y), Float($0.width), Float($0.height)] })
            f.add(s.sample.classes.map(Float.init))
            f.add(s.photo.utf8.map(Float.init))
        }
        return f.hex
    }

    /// Small images, so that many are quick to make.
    static var small: SceneDetection.Settings {
        var s = SceneDetection.Settings()
        s.sideRange = 64...128
        s.heightRange = 8...48
        return s
    }

    @Test func sameSeedSameScenesInAnyOrder() {
        let a = SceneDetection.generate(count: 6, from: Self.digits, photos: Self.trainPhotos, settings: Self.small,
                                        seed: 7)
        let b = Parallel.withThreads(1) {
            SceneDetection.generate(count: 6, from: Self.digits, photos: Self.trainPhotos, settings: Self.small,
                                    seed: 7)
        }
        let c = SceneDetection.generate(count: 6, from: Self.digits, photos: Self.trainPhotos, settings: Self.small,
                                        seed: 8)
        let prefix = SceneDetection.generate(count: 3, from: Self.digits, photos: Self.trainPhotos,
                                             settings: Self.small, seed: 7)
        #expect(Self.fingerprint(a) == Self.fingerprint(b))
        #expect(Self.fingerprint(a) != Self.fingerprint(c))
        // Scene k depends on the seed and k alone, not on how many are made nor on the threads.
        #expect(Self.fingerprint(Array(a.prefix(3))) == Self.fingerprint(prefix))
    }

    @Test func sizesCountsAndBoxesInRange() {
        let settings = SceneDetection.Settings()
        let scenes = SceneDetection.generate(count: 12, from: Self.digits, photos: Self.trainPhotos, seed: 1)
        var sides = Set<Int>()
        for (k, scene) in scenes.enumerated() {
            let s = scene.sample, w = s.image.width, h = s.image.height
            sides.formUnion([w, h])
            #expect(s.image.channels == 3 && settings.sideRange.contains(w) && settings.sideRange.contains(h))
            #expect(s.image.pixels.allSatisfy { (0...1).contains($0) })
            #expect(settings.digitRange.contains(s.boxes.count), "image \(k): \(s.boxes.count) digits")
            #expect(s.classes.allSatisfy { (0...9).contains($0) })
            for b in s.boxes {
                #expect(b.x >= 0 && b.y >= 0 && b.maxX <= Double(w) && b.maxY <= Double(h),
                        "image \(k): box \(b) leaves the \(w)×\(h) image")
                #expect(b.x == b.x.rounded() && b.y == b.y.rounded()
                        && b.width == b.width.rounded() && b.width >= 1)
                #expect(settings.heightRange.contains(Int(b.height)), "image \(k): box height \(b.height)")
            }
        }
        // Crowded images and sizes spread over the range, not one fixed canvas.
        #expect(scenes.map(\.sample.boxes.count).max()! >= 10)
        #expect(sides.count >= 12 && sides.min()! < 220 && sides.max()! > 340, "sides seen: \(sides.sorted())")
        let heights = scenes.flatMap(\.sample.boxes).map(\.height)
        #expect(heights.min()! < 20 && heights.max()! > 90, "heights from \(heights.min()!) to \(heights.max()!)")
    }

    @Test func digitsAreColouredAndInsideTheirBoxes() {
        // On a flat grey RGB photo (which is not tinted) only digits bring colour: every box holds a pixel
        // whose channels differ, and away from all boxes the image stays grey but for the digits'
        // faint edges (alpha ≤ inkThreshold, so a change of at most 0.05 per digit).
        let grey = SceneDetection.Photo(name: "grey",
                                        image: Image(width: 300, height: 300, channels: 3, repeating: 0.5))
        for scene in SceneDetection.generate(count: 8, from: Self.digits, photos: [grey], settings: Self.small,
                                             seed: 2) {
            let image = scene.sample.image
            func coloured(_ x: Int, _ y: Int) -> Bool {
                let rgb = (0..<3).map { image[x: x, y: y, c: $0] }
                return rgb.max()! - rgb.min()! > 0.05
            }
            for b in scene.sample.boxes {
                let xs = Int(b.x)..<Int(b.maxX), ys = Int(b.y)..<Int(b.maxY)
                #expect(ys.contains { y in xs.contains { x in coloured(x, y) } }, "box \(b) holds no colour")
            }
            for y in 0..<image.height {
                for x in 0..<image.width where !scene.sample.boxes.contains(where: {
                    Double(x) >= $0.x && Double(x) < $0.maxX && Double(y) >= $0.y && Double(y) < $0.maxY
                }) {
                    #expect((0..<3).allSatisfy { abs(image[x: x, y: y, c: $0] - 0.5) <= 0.1 },
                            "ink at (\(x), \(y)) outside every box")
                }
            }
        }
    }

    @Test func aDigitMayHideAtMostHalfOfAnEarlierOne() throws {
        // An earlier 4×2 digit of full alpha; a new opaque 2×2 patch over its left half hides exactly half.
        let earlier = SceneDetection.Placed(left: 10, top: 10, width: 4, height: 2,
                                            visible: [Float](repeating: 1, count: 8), mass: 8)
        let opaque = Image(width: 2, height: 2, channels: 1, repeating: 1)
        let half = try #require(SceneDetection.cover([earlier], with: opaque, left: 10, top: 10, maxHidden: 0.5))
        #expect(half[0].visible == [0, 0, 1, 1, 0, 0, 1, 1])
        // A third of a pixel more hidden, or a stricter limit, and the placement is refused.
        let faint = Image(width: 1, height: 2, channels: 1, pixels: [0.34, 0.34])
        #expect(SceneDetection.cover(half, with: faint, left: 12, top: 10, maxHidden: 0.5) == nil)
        #expect(SceneDetection.cover([earlier], with: opaque, left: 10, top: 10, maxHidden: 0.4) == nil)
        // Alpha blends: a patch of alpha 0.5 leaves half of what it covers; one beside the digit leaves it whole.
        let glass = Image(width: 4, height: 2, channels: 1, repeating: 0.5)
        let blended = try #require(SceneDetection.cover([earlier], with: glass, left: 10, top: 10, maxHidden: 0.5))
        #expect(blended[0].visible == [Float](repeating: 0.5, count: 8))
        let beside = try #require(SceneDetection.cover([earlier], with: opaque, left: 14, top: 10, maxHidden: 0))
        #expect(beside[0].visible == earlier.visible)
    }

    @Test func trainingAndTestBackgroundsComeFromDisjointPhotos() {
        let train = Set(Self.trainPhotos.map(\.name)), test = Set(Self.testPhotos.map(\.name))
        #expect(train.count == 6 && test.count == 3 && train.isDisjoint(with: test))
        #expect(!Self.trainPhotos.contains { p in Self.testPhotos.contains { $0.image == p.image } })
        #expect(Self.trainPhotos.allSatisfy { $0.image.pixels.allSatisfy { (0...1).contains($0) } })
        let fromTrain = SceneDetection.generate(count: 24, from: Self.digits, photos: Self.trainPhotos,
                                                settings: Self.small, seed: 3)
        let fromTest = SceneDetection.generate(count: 12, from: Self.digits, photos: Self.testPhotos,
                                               settings: Self.small, seed: 4)
        #expect(Set(fromTrain.map(\.photo)).isSubset(of: train) && Set(fromTrain.map(\.photo)).count >= 4)
        #expect(Set(fromTest.map(\.photo)).isSubset(of: test) && Set(fromTest.map(\.photo)).count >= 2)
    }

    @Test func writesCOCOThatReadsBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scenes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scenes = SceneDetection.generate(count: 5, from: Self.digits, photos: Self.testPhotos, seed: 5)
        let (path, written) = try SceneDetection.write(count: 5, from: Self.digits, photos: Self.testPhotos, seed: 5,
                                                       to: dir, split: "test")
        #expect(path == dir + "/test/annotations.json")
        let coco = try COCODataset.read(path)
        #expect(coco == written && coco.warnings.isEmpty)
        #expect(coco.categories.map(\.id) == Array(0...9) && coco.categories.map(\.name) == (0...9).map(String.init))
        #expect(coco.images.map(\.id) == Array(1...5) && coco.images.map(\.fileName) == (1...5).map {
            String(format: "%06d.png", $0)
        })
        var next = 0
        for (k, scene) in scenes.enumerated() {
            let s = scene.sample
            #expect(coco.images[k].width == s.image.width && coco.images[k].height == s.image.height)
            for (b, c) in zip(s.boxes, s.classes) {
                let a = coco.annotations[next]
                next += 1
                #expect(a.imageID == k + 1 && a.categoryID == c && a.bbox == b && a.area == b.area && !a.isCrowd)
            }
            let png = try ImageCodecs.read(dir + "/test/images/" + coco.images[k].fileName)
            #expect(png.width == s.image.width && png.height == s.image.height && png.channels == 3)
            #expect(zip(png.pixels, s.image.pixels).allSatisfy { abs($0 - $1 * 255) <= 0.5 + 1e-3 })
        }
        #expect(next == coco.annotations.count)

        // The statistics of the file read back are those of the scenes made in memory.
        let stats = try #require(DetectionSetStatistics(coco))
        let boxes = scenes.flatMap(\.sample.boxes), counts = scenes.map(\.sample.boxes.count)
        #expect(stats.images == 5 && stats.boxes == boxes.count)
        #expect(stats.widths == scenes.map(\.sample.image.width).min()!...scenes.map(\.sample.image.width).max()!)
        #expect(stats.heights == scenes.map(\.sample.image.height).min()!...scenes.map(\.sample.image.height).max()!)
        #expect(stats.boxesPerImage == counts.min()!...counts.max()!)
        #expect(stats.small == boxes.filter { $0.area < 1024 }.count)
        #expect(stats.large == boxes.filter { $0.area >= 9216 }.count)
        #expect(stats.small + stats.medium + stats.large == boxes.count)
    }

    @Test func statisticsUseCOCOsAreaThresholds() throws {
        // Areas either side of 32² = 1024 and 96² = 9216; image 2 holds no box.
        let sizes: [(Double, Double)] = [(31, 33), (32, 32), (95, 97), (96, 96), (8, 8)]
        let coco = COCODataset(
            images: [.init(id: 1, fileName: "a.png", width: 300, height: 200),
                     .init(id: 2, fileName: "b.png", width: 160, height: 400)],
            annotations: sizes.enumerated().map { k, s in
                .init(id: k + 1, imageID: 1, categoryID: 0, bbox: Box(x: 0, y: 0, width: s.0, height: s.1))
            },
            categories: [.init(id: 0, name: "0")])
        let stats = try #require(DetectionSetStatistics(coco))
        #expect(stats.small == 2 && stats.medium == 2 && stats.large == 1)
        #expect(stats.widths == 160...300 && stats.heights == 200...400 && stats.boxesPerImage == 0...5)
        #expect(stats.meanBoxesPerImage == 2.5)
        #expect(DetectionSetStatistics(COCODataset(images: [], annotations: [], categories: [])) == nil)
    }

    @Test func settingsOutsideTheirRangesAreNamed() {
        var s = SceneDetection.Settings()
        #expect(s.problem == nil)
        s.heightRange = 12...200
        #expect(s.problem?.contains("digit heights") == true)
        s = SceneDetection.Settings()
        s.sideRange = 8...400
        #expect(s.problem?.contains("image sides") == true)
        s = SceneDetection.Settings()
        s.maxHidden = 1
        #expect(s.problem != nil)
    }

    @Test func missingPhotoFolderIsOneClearError() {
        #expect(throws: DataError.self) { try SceneDetection.loadPhotos(directory: "/nonexistent", split: "train") }
        #expect(throws: DataError.self) {
            try SceneDetection.loadPhotos(directory: FileFormatTests.repoRoot + "/data", split: "mnist")
        }
    }
}
