import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore
@testable import LSTMVisionFuzz

/// The fuzzing corpus and every input the fuzzers ever found go through their parser on each test run:
/// each must parse or throw the parser's documented error type (a trap would end the test process).
/// A short deterministic mutation run per parser then exercises the same code as `lstmvision-fuzz`.
@Suite struct FuzzRegressionTests {
    /// Tests/Fuzz, next to this file's folder.
    static let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    /// The files of Tests/Fuzz/<kind>/<target>, sorted by name.
    static func files(_ kind: String, _ target: FuzzTarget) -> [(name: String, bytes: [UInt8])] {
        let dir = fuzzRoot + "/" + kind + "/" + target.rawValue
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }
            .sorted()
        return names.compactMap { name in
            FileManager.default.contents(atPath: dir + "/" + name).map {
                (kind + "/" + target.rawValue + "/" + name, [UInt8]($0))
            }
        }
    }

    /// nil when `bytes` parse or are refused with the parser's own error type; otherwise the stray error.
    static func strayError(_ target: FuzzTarget, _ bytes: [UInt8]) -> (any Error)? {
        do {
            try target.parse(bytes)
            return nil
        } catch {
            return FuzzTarget.isParserError(error) ? nil : error
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusAndRegressionsParseOrThrow(_ target: FuzzTarget) throws {
        let corpus = Self.files("corpus", target)
        #expect(!corpus.isEmpty, "no seeds under \(Self.fuzzRoot)/corpus/\(target.rawValue)")
        for (name, bytes) in corpus + Self.files("regressions", target) {
            let stray = Self.strayError(target, bytes)
            #expect(stray == nil, "\(name): \(stray.map { "\(type(of: $0)): \($0)" } ?? "")")
        }
    }

    /// Every seed except the deliberately damaged ones (named `*-head*` or `bad-*`) parses.
    @Test(arguments: FuzzTarget.allCases)
    func seedsAreValid(_ target: FuzzTarget) throws {
        for (name, bytes) in Self.files("corpus", target) where !name.contains("-head") && !name.contains("/bad-") {
            do { try target.parse(bytes) } catch { Issue.record("\(name): \(error)") }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seededMutationsParseOrThrow(_ target: FuzzTarget) throws {
        let seeds = Self.files("corpus", target).map(\.bytes) + Self.files("regressions", target).map(\.bytes)
        try #require(!seeds.isEmpty)
        var mutator = Mutator(state: 0x5EED_0000 + UInt64(target.rawValue.utf8.count))
        var previous = seeds[0]
        var rejected = 0
        for i in 0..<300 {
            let base = mutator.below(4) == 0 ? previous : seeds[mutator.below(seeds.count)]
            let input = mutator.mutate(base, corpus: seeds)
            previous = input
            do {
                try target.parse(input)
            } catch where FuzzTarget.isParserError(error) {
                rejected += 1
            } catch {
                Issue.record("""
                    mutation \(i) of \(target.rawValue) (\(input.count) bytes, \
                    base64 \(Data(input).base64EncodedString())): \(type(of: error)): \(error)
                    """)
            }
        }
        #expect(rejected > 0, "no mutation was rejected: the mutator does not mutate")
    }

    /// Inputs that once made a parser allocate gigabytes or run for seconds, parsed in a child process
    /// (`lstmvision-fuzz <target> --iterations 0`, built next to the test bundle) that checks its own peak
    /// memory; the time is checked here.
    @Test(arguments: FuzzTarget.allCases)
    func regressionsStaySmallAndQuick(_ target: FuzzTarget) throws {
        let dir = Self.fuzzRoot + "/regressions/" + target.rawValue
        guard !Self.files("regressions", target).isEmpty else { return }
        let exe = Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("lstmvision-fuzz").path
        try #require(FileManager.default.isExecutableFile(atPath: exe), "\(exe) is not built")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = [target.rawValue, "--iterations", "0", "--corpus", dir, "--max-memory-mib", "512"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let started = Date()
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        print("\(target.rawValue) regressions: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "lstmvision-fuzz on \(dir): \(text)")
        #expect(seconds < 30, "parsing \(dir) took \(seconds) s")
    }

    /// Every reader of outside files refuses one over `maxFileBytes` (1 GiB) before reading it: a sparse file
    /// of 1 GiB + 1 byte (which takes no disk space) given to each is one "over the file-size limit" error, at once.
    @Test func everyReaderRefusesAFileOverTheLimitUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(getpid())-huge").path
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/labels", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func sparse(_ path: String) throws -> String {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0)
            defer { close(fd) }
            try #require(ftruncate(fd, off_t(InputLimits.default.maxFileBytes) + 1) == 0)
            return path
        }
        let huge = try sparse(dir + "/huge.bin")
        try ImageCodecs.writePNG(Image(width: 2, height: 2, channels: 1), to: dir + "/images/a.png")
        _ = try sparse(dir + "/labels/a.txt")
        let readers: [(String, () throws -> Void)] = [
            ("IDX", { _ = try IDX.read(huge) }),
            ("image", { _ = try ImageCodecs.read(huge) }),
            ("safetensors", { _ = try SafeTensors.read(huge) }),
            ("model file", { _ = try ModelFile.load(huge) }),
            ("detector file", { _ = try DetectorFile.load(huge) }),
            ("COCO annotations", { _ = try COCODataset.read(huge) }),
            ("COCO results", {
                _ = try COCODetection.read(huge, for: COCODataset(images: [], annotations: [], categories: []))
            }),
            ("YOLO class names", { _ = try YOLO.readClassNames(huge) }),
            ("YOLO labels", { _ = try YOLO.read(directory: dir, classNames: ["a"]) }),
            ("TFRecord", { _ = try TFRecord.read(huge) }),
            ("TensorBoard events", { _ = try TensorBoardLog.scalars(in: huge) }),
        ]
        for (name, read) in readers {
            let started = Date()
            do {
                try read()
                Issue.record("\(name): a file over the limit was accepted")
            } catch let e as DataError {
                let limit = InputLimits.default.maxFileBytes
                #expect("\(e)".hasSuffix("bytes, over the file-size limit of \(limit) bytes (maxFileBytes)"),
                        "\(name): \(e)")
                #expect(e.exceededLimits == [.maxFileBytes])
            }
            #expect(Date().timeIntervalSince(started) < 1, "\(name) read the file before refusing it")
        }
    }

    /// A PNG chunk whose declared length runs past the end of the data is refused as truncated.
    @Test func pngChunkLongerThanTheFileIsTruncated() throws {
        let png = try #require(Self.files("corpus", .image).first { $0.name.hasSuffix("grey16.png") }).bytes
        var long = png
        long[8] = 0x7F   // IHDR's length becomes 2 GB
        #expect(throws: ImageError.truncated(path: "t", format: "PNG")) { try ImageCodecs.decode(long, source: "t") }
    }

    @Test func mutatorIsDeterministic() {
        var a = Mutator(state: 7), b = Mutator(state: 7)
        let seed = Array("P5 3 2 255\n abcdef".utf8)
        for _ in 0..<50 { #expect(a.mutate(seed, corpus: [seed]) == b.mutate(seed, corpus: [seed])) }
    }

    @Test func pngChecksumsAreRepaired() throws {
        let png = try #require(Self.files("corpus", .image).first { $0.name.hasSuffix("grey16.png") }).bytes
        var damaged = png
        damaged[12 + 4 + 13 + 1] ^= 0xFF   // inside the IHDR chunk's CRC
        #expect(throws: ImageError.self) { try ImageCodecs.decode(damaged, source: "t") }
        #expect(fixPNGChecksums(damaged) == png)
        _ = try ImageCodecs.decode(fixPNGChecksums(damaged), source: "t")
    }
}
