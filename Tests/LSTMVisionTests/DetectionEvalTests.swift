import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Detection evaluation: the assignment solver, boxes, the COCO and YOLO readers, and the COCO evaluator
/// against pycocotools (the cases of tools/make_coco_reference.py).
@Suite struct DetectionEvalTests {
    // MARK: - Assignment

    /// The number of allowed pairs and their total cost; checks that no column is used twice.
    func score(_ cost: [[Double]], _ columns: [Int?],
               sourceLocation: SourceLocation = #_sourceLocation) -> (pairs: Int, total: Double) {
        let used = columns.compactMap { $0 }
        #expect(Set(used).count == used.count, "column assigned twice: \(columns)", sourceLocation: sourceLocation)
        let costs = columns.enumerated().compactMap { i, j in j.map { cost[i][$0] } }
        #expect(costs.allSatisfy { $0.isFinite }, "forbidden pair assigned: \(columns)", sourceLocation: sourceLocation)
        return (costs.count, costs.reduce(0, +))
    }

    @Test func assignmentMatchesBruteForce() {
        var g = SeededGenerator(seed: 7)
        var checked = 0
        for n in 1...6 {
            for m in 1...6 {
                for trial in 0..<25 {
                    // Small integer costs make ties common; some trials forbid pairs, some use real values.
                    let forbidRate = trial % 3 == 0 ? 0.3 : 0
                    let cost = (0..<n).map { _ in
                        (0..<m).map { _ -> Double in
                            if Double.random(in: 0..<1, using: &g) < forbidRate { return .infinity }
                            return trial % 2 == 0 ? Double(Int.random(in: -2...3, using: &g))
                                                  : Double.random(in: -5...5, using: &g)
                        }
                    }
                    let fast = Assignment.solve(cost), slow = Assignment.bruteForce(cost)
                    #expect(fast.count == n)
                    let a = score(cost, fast), b = score(cost, slow)
                    #expect(a.pairs == b.pairs && abs(a.total - b.total) <= 1e-9,
                            "\(cost): \(fast) vs brute force \(slow)")
                    if forbidRate == 0 { #expect(a.pairs == min(n, m)) }
                    checked += 1
                }
            }
        }
        print("  assignment: \(checked) random matrices agree with brute force")
    }

    @Test func assignmentKnownCases() {
        #expect(Assignment.solve([[4, 1, 3], [2, 0, 5], [3, 2, 2]]) == [1, 0, 2])
        #expect(Assignment.solve([[1, 2, 3]]) == [0])
        #expect(Assignment.solve([[5], [1], [3]]) == [nil, 0, nil])
        #expect(Assignment.solve([[9, 1], [1, 9], [5, 5]]) == [1, 0, nil])
        #expect(Assignment.solve([]) == [])
        #expect(Assignment.solve([[], []]) == [nil, nil])
        // A row whose every pair is forbidden stays unassigned; the others still get their best columns.
        #expect(Assignment.solve([[.infinity, .infinity], [3, 1]]) == [nil, 1])
        #expect(Assignment.solve([[.infinity]]) == [nil])
        // Forbidding the cheap pair forces the only complete assignment, even though it costs more.
        #expect(Assignment.solve([[1, 0], [.infinity, 100]]) == [0, 1])
        // Huge finite costs are not mistaken for forbidden ones.
        #expect(Assignment.solve([[1e12, 1], [1, 1e12]]) == [1, 0])
    }

    // MARK: - Box

    @Test func boxGeometry() throws {
        let a = Box(x: 0, y: 0, width: 10, height: 10)
        #expect(a.iou(a) == 1)
        #expect(a.iou(Box(x: 5, y: 0, width: 10, height: 10)) == 50.0 / 150.0)
        #expect(a.iou(Box(x: 10, y: 0, width: 5, height: 5)) == 0)          // touching edges do not overlap
        #expect(a.iou(Box(x: 20, y: 20, width: 5, height: 5)) == 0)
        #expect(a.iou(Box(x: 2, y: 2, width: 0, height: 5)) == 0)           // empty box
        let inner = Box(x: 2, y: 2, width: 4, height: 4)
        #expect(inner.iou(a) == 16.0 / 100.0)
        #expect(inner.iou(a, otherIsCrowd: true) == 1)                      // inside a crowd region
        #expect(a.area == 100 && inner.centerX == 4 && inner.centerY == 4 && inner.maxX == 6)
        #expect(Box(centerX: 4, centerY: 4, width: 4, height: 4) == inner)
        #expect(Box(x: -5, y: 8, width: 20, height: 10).clipped(width: 12, height: 12)
                == Box(x: 0, y: 8, width: 12, height: 4))
        #expect(Box(x: 50, y: 50, width: 5, height: 5).clipped(width: 12, height: 12).area == 0)
        let json = try JSONEncoder().encode(Box(x: 1.5, y: 2, width: 3, height: 4))
        #expect(String(decoding: json, as: UTF8.self) == "[1.5,2,3,4]")
        #expect(try JSONDecoder().decode(Box.self, from: json) == Box(x: 1.5, y: 2, width: 3, height: 4))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Box.self, from: Data("[1,2,3]".utf8)) }
    }

    // MARK: - COCO files

    static let gtJSON = """
        {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80},
                    {"id": 2, "file_name": "b.png", "width": 50, "height": 50}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 30],
                          "area": 500, "iscrowd": 0, "segmentation": []},
                         {"id": 2, "image_id": 2, "category_id": 4, "bbox": [0, 0, 10, 10]}],
         "categories": [{"id": 3, "name": "cat", "supercategory": "animal"}, {"id": 4, "name": "dog"}]}
        """

    func gt(_ json: String = gtJSON, replacing old: String = "", with new: String = "") throws -> COCODataset {
        try COCODataset.decode(Data(json.replacingOccurrences(of: old, with: new).utf8), source: "gt.json")
    }

    /// Runs `body`, which must throw a `DataError` whose message contains every one of `parts`.
    func expectDataError(_ parts: String..., sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("no error; expected one mentioning \(parts)", sourceLocation: sourceLocation)
        } catch let e as DataError {
            for p in parts { #expect("\(e)".contains(p), "'\(e)' lacks '\(p)'", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("expected a DataError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func cocoReadsAndValidates() throws {
        let d = try gt()
        #expect(d.images.map(\.fileName) == ["a.png", "b.png"] && d.categories.map(\.name) == ["cat", "dog"])
        #expect(d.annotations[0] == COCODataset.Annotation(id: 1, imageID: 1, categoryID: 3,
                                                           bbox: Box(x: 10, y: 10, width: 20, height: 30), area: 500))
        #expect(d.annotations[1].area == 100 && !d.annotations[1].isCrowd && d.warnings.isEmpty)   // defaults
        expectDataError("gt.json", "not valid COCO annotation JSON") {
            _ = try gt(replacing: "\"images\": [", with: "\"images\": [[")
        }
        expectDataError("gt.json", "not valid") { _ = try gt("{\"images\": [], \"annotations\": []") }
        expectDataError("gt.json", "annotations[1]", "bbox") {
            _ = try gt(replacing: "[0, 0, 10, 10]", with: "[0, 0, 10]")
        }
        expectDataError("gt.json", "missing key 'categories'") { _ = try gt("{\"images\": [], \"annotations\": []}") }
        expectDataError("gt.json", "annotation 2", "unknown image id 7") {
            _ = try gt(replacing: "\"image_id\": 2", with: "\"image_id\": 7")
        }
        expectDataError("gt.json", "annotation 2", "unknown category id 9") {
            _ = try gt(replacing: "\"category_id\": 4", with: "\"category_id\": 9")
        }
        expectDataError("gt.json", "annotation 2", "invalid box") {
            _ = try gt(replacing: "[0, 0, 10, 10]", with: "[0, 0, -10, 10]")
        }
        expectDataError("gt.json", "duplicate annotation id 1") {
            _ = try gt(replacing: "{\"id\": 2, \"image_id\"", with: "{\"id\": 1, \"image_id\"")
        }
        expectDataError("gt.json", "duplicate image id 1") {
            _ = try gt(replacing: "{\"id\": 2, \"file_name\"", with: "{\"id\": 1, \"file_name\"")
        }
        expectDataError("gt.json", "duplicate category id 3") {
            _ = try gt(replacing: "{\"id\": 4, \"name\"", with: "{\"id\": 3, \"name\"")
        }
        expectDataError("gt.json", "iscrowd") { _ = try gt(replacing: "\"iscrowd\": 0", with: "\"iscrowd\": 2") }
        expectDataError("gt.json", "size 0x50") { _ = try gt(replacing: "\"width\": 50", with: "\"width\": 0") }
        expectDataError("gt.json", "lies outside") { _ = try gt(replacing: "[0, 0, 10, 10]", with: "[60, 0, 10, 10]") }
        // Within 1 px of the image is accepted as it is; further out is clipped, with a warning.
        #expect(try gt(replacing: "[0, 0, 10, 10]", with: "[-0.5, 0, 51, 10]").annotations[1].bbox
                == Box(x: -0.5, y: 0, width: 51, height: 10))
        let clipped = try gt(replacing: "[0, 0, 10, 10]", with: "[-5, 45, 20, 10]")
        #expect(clipped.annotations[1].bbox == Box(x: 0, y: 45, width: 15, height: 5))
        #expect(clipped.warnings.count == 1 && clipped.warnings[0].contains("1 box reached more than 1 px outside"))
    }

    @Test func cocoDetectionsValidateAgainstTheDataset() throws {
        let d = try gt()
        func dets(_ json: String) throws -> [COCODetection] {
            try COCODetection.decode(Data(json.utf8), source: "dets.json", for: d)
        }
        let ok = try dets(#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]"#)
        #expect(ok == [COCODetection(imageID: 1, categoryID: 3, bbox: Box(x: 1, y: 2, width: 3, height: 4),
                                     score: 0.5)])
        #expect(try dets("[]").isEmpty)
        expectDataError("dets.json", "not valid COCO results JSON") { _ = try dets(#"{"image_id": 1}"#) }
        expectDataError("dets.json", "detection 0", "unknown image id 5") {
            _ = try dets(#"[{"image_id": 5, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]"#)
        }
        expectDataError("dets.json", "detection 0", "unknown category id 1") {
            _ = try dets(#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]"#)
        }
        expectDataError("dets.json", "invalid box") {
            _ = try dets(#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, -4], "score": 0.5}]"#)
        }
        expectDataError("dets.json", "missing key 'score'") {
            _ = try dets(#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]"#)
        }
    }

    @Test func cocoFilesRoundTripAndLimits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coco-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try gt()
        try d.write(to: dir + "/gt.json")
        #expect(try COCODataset.read(dir + "/gt.json") == d)
        let found = [COCODetection(imageID: 2, categoryID: 4, bbox: Box(x: 0.25, y: 1, width: 9, height: 9.5),
                                   score: 0.75)]
        try COCODetection.write(found, to: dir + "/dets.json")
        #expect(try COCODetection.read(dir + "/dets.json", for: d) == found)
        expectDataError("gt.json", "over the file-size limit of 100 bytes (maxFileBytes)") {
            _ = try COCODataset.read(dir + "/gt.json", limits: InputLimits(maxFileBytes: 100))
        }
        expectDataError("nothing.json", "no such file") { _ = try COCODataset.read(dir + "/nothing.json") }
        expectDataError("is a directory") { _ = try COCODataset.read(dir) }
    }

    // MARK: - YOLO

    @Test func yoloFolderBecomesCOCO() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yolo-\(UUID().uuidString)").path
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/images/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/labels/sub", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir) }
        try ImageCodecs.writePNG(Image(width: 40, height: 20, channels: 3, repeating: 9), to: dir + "/images/a.png")
        try ImageCodecs.writePGM(Image(width: 30, height: 10, channels: 1, repeating: 9), to: dir + "/images/sub/b.pgm")
        let jpeg = try #require(Bundle.module.url(forResource: "small", withExtension: "jpg",
                                                  subdirectory: "Fixtures/images"))
        try fm.copyItem(atPath: jpeg.path, toPath: dir + "/images/c.jpg")
        try "0 0.5 0.5 0.5 0.5\n\n1 0.25 0.5 0.5 1.0\n".write(toFile: dir + "/labels/a.txt", atomically: true,
                                                              encoding: .utf8)
        // Reaches 4.5 px left.
        try "1 0.1 0.5 0.5 0.2".write(toFile: dir + "/labels/sub/b.txt", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/labels/orphan.txt", atomically: true, encoding: .utf8)
        try "apple\nbanana\n\n".write(toFile: dir + "/names.txt", atomically: true, encoding: .utf8)

        let names = try YOLO.readClassNames(dir + "/names.txt")
        #expect(names == ["apple", "banana"])
        let d = try YOLO.read(directory: dir, classNames: names)
        let small = try ImageCodecs.read(jpeg.path)
        #expect(d.images == [COCODataset.Image(id: 1, fileName: "a.png", width: 40, height: 20),
                             COCODataset.Image(id: 2, fileName: "c.jpg", width: small.width, height: small.height),
                             COCODataset.Image(id: 3, fileName: "sub/b.pgm", width: 30, height: 10)])
        #expect(d.categories == [COCODataset.Category(id: 0, name: "apple"),
                                 COCODataset.Category(id: 1, name: "banana")])
        #expect(d.annotations.map(\.bbox) == [Box(x: 10, y: 5, width: 20, height: 10),
                                              Box(x: 0, y: 0, width: 20, height: 20),
                                              Box(x: 0, y: 4, width: 10.5, height: 2)])
        #expect(d.annotations.map(\.imageID) == [1, 1, 3] && d.annotations.map(\.categoryID) == [0, 1, 1])
        #expect(d.annotations.map(\.area) == [200, 400, 21])
        #expect(d.warnings.count == 2 && d.warnings.contains { $0.contains("clipped") }
                && d.warnings.contains { $0.contains("orphan.txt") })

        func bad(_ line: String, _ parts: String..., sourceLocation: SourceLocation = #_sourceLocation) throws {
            try line.write(toFile: dir + "/labels/a.txt", atomically: true, encoding: .utf8)
            do {
                _ = try YOLO.read(directory: dir, classNames: names)
                Issue.record("'\(line)' accepted", sourceLocation: sourceLocation)
            } catch let e as DataError {
                for p in ["a.txt"] + parts {
                    #expect("\(e)".contains(p), "'\(e)' lacks '\(p)'", sourceLocation: sourceLocation)
                }
            }
        }
        try bad("0 0.5 0.5 0.5", "line 1", "expected 5 fields")
        try bad("0 0.5 0.5 0.5 0.5\n2 0.5 0.5 0.5 0.5", "line 2", "class 2 is outside 0..<2")
        try bad("x 0.5 0.5 0.5 0.5", "not an integer")
        try bad("0 0.5 1.5 0.5 0.5", "cy 1.5 is outside [0, 1]")
        try bad("0 0.5 0.5 nan 0.5", "w 'nan' is not a finite number")
        try bad("0 0.5 0.5 -0.1 0.5", "outside [0, 1]")
        expectDataError("no such folder") { _ = try YOLO.read(directory: dir + "/missing", classNames: names) }
    }

    @Test func yoloImageSizeReadsHeadersOnly() throws {
        let jpeg = try #require(Bundle.module.url(forResource: "small", withExtension: "jpg",
                                                  subdirectory: "Fixtures/images"))
        let decoded = try ImageCodecs.read(jpeg.path)
        let header = try YOLO.imageSize(jpeg.path)
        #expect(header.width == decoded.width && header.height == decoded.height)
        let png = FileManager.default.temporaryDirectory
            .appendingPathComponent("yolo-size-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: png) }
        try ImageCodecs.writePNG(Image(width: 7, height: 3, channels: 1, repeating: 0), to: png)
        #expect(try YOLO.imageSize(png) == (7, 3))
        #expect(throws: DataError.missing(png + ".missing: no such file")) { try YOLO.imageSize(png + ".missing") }
    }

    // MARK: - Evaluator against pycocotools

    static let cases = ["random1", "random2", "random3", "no_detections", "duplicates", "category_without_ground_truth",
                        "empty_image", "crowd", "area_boundaries", "matching_rules", "many_detections"]

    /// The path of the committed fixture `coco/<name>`.
    func cocoFixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/coco"),
                     "missing fixture coco/\(name)").path
    }

    @Test(arguments: cases) func evaluatorMatchesPycocotools(_ name: String) throws {
        func file(_ suffix: String) throws -> String { try cocoFixture("\(name).\(suffix).json") }
        struct Expected: Decodable { let stats: [Double]; let perClassAP: [String: Double] }
        let expected = try JSONDecoder().decode(Expected.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: try file("expected"))))
        let truth = try COCODataset.read(try file("gt"))
        let metrics = COCOEvaluator.evaluate(groundTruth: truth,
                                             detections: try COCODetection.read(try file("dets"), for: truth))
        #expect(metrics.stats.count == 12 && expected.stats.count == 12)
        #expect(Set(metrics.perClassAP.keys) == Set(expected.perClassAP.keys))
        var worst = 0.0
        for (k, (a, e)) in zip(metrics.stats, expected.stats).enumerated() {
            worst = max(worst, abs(a - e))
            #expect(abs(a - e) <= 1e-4, "\(name): stats[\(k)] = \(a), pycocotools \(e)")
        }
        for (category, e) in expected.perClassAP {
            let a = metrics.perClassAP[category] ?? .nan
            worst = max(worst, abs(a - e))
            #expect(abs(a - e) <= 1e-4, "\(name): AP of \(category) = \(a), pycocotools \(e)")
        }
        print("  coco \(name): max |Δ| vs pycocotools = \(worst)")
    }

    @Test func metricsReportAndJSON() throws {
        let truth = try gt()
        let perfect = truth.annotations.map {
            COCODetection(imageID: $0.imageID, categoryID: $0.categoryID, bbox: $0.bbox, score: 1)
        }
        let m = COCOEvaluator.evaluate(groundTruth: truth, detections: perfect)
        // Both objects are small: perfect AP and AR there, and -1 (no ground truth) for medium and large.
        // (pycocotools' precision is tp / (tp + fp + ε), a hair under 1.)
        let want: [Double] = [1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1]
        #expect(zip(m.stats, want).allSatisfy { abs($0 - $1) < 1e-12 }, "\(m.stats)")
        #expect(m.perClassAP.keys.sorted() == ["cat", "dog"] && m.perClassAP.values.allSatisfy { abs($0 - 1) < 1e-12 })
        let lines = m.report().split(separator: "\n")
        #expect(lines.count == 14)
        #expect(lines[0] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000")
        #expect(lines[4] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000")
        #expect(lines[6] == " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000")
        #expect(lines[1] == " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(m)) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
                                                     "ARs", "ARm", "ARl", "perClassAP"])
        let none = COCOEvaluator.evaluate(groundTruth: truth, detections: [])
        #expect(none.AP == 0 && none.AR100 == 0 && none.APl == -1)
    }
}
