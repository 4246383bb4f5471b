import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// IDX, gzip and safetensors readers: valid files load, every malformed one is refused with a clear error.
@Suite struct FileFormatTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func idx(_ dims: [UInt32], payload: Int) -> Data {
        var d = Data([0, 0, 8, UInt8(dims.count)])
        for v in dims {
            d.append(contentsOf: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)])
        }
        d.append(Data(repeating: 7, count: payload))
        return d
    }

    @Test func idxParsesAndRejects() throws {
        let ok = try IDX.parse(idx([2, 3, 4], payload: 24), source: "t")
        #expect(ok.dimensions == [2, 3, 4] && ok.bytes.count == 24 && ok.bytes[5] == 7)
        // Truncated, trailing bytes, a short header, a bad magic number, the float type.
        #expect(throws: DataError.self) { try IDX.parse(self.idx([2, 3, 4], payload: 23), source: "t") }
        #expect(throws: DataError.self) { try IDX.parse(self.idx([2, 3, 4], payload: 25), source: "t") }
        #expect(throws: DataError.self) { try IDX.parse(Data([0, 0, 8]), source: "t") }
        #expect(throws: DataError.self) { try IDX.parse(Data([1, 0, 8, 1, 0, 0, 0, 0]), source: "t") }
        #expect(throws: DataError.self) { try IDX.parse(Data([0, 0, 0x0D, 1, 0, 0, 0, 0]), source: "t") }
        // A hostile header claiming 2^32-1 images of 65535×65535 fails at once, before any allocation.
        do {
            _ = try IDX.parse(idx([0xFFFF_FFFF, 0xFFFF, 0xFFFF], payload: 16), source: "hostile")
            Issue.record("hostile header accepted")
        } catch let e as DataError {
            #expect("\(e)".contains("over the file-size limit of \(1 << 30) bytes (maxFileBytes)"))
            #expect(e.exceededLimits == [.maxFileBytes])
        }
    }

    @Test func gzipRoundTripAndTruncation() throws {
        let path = Self.repoRoot + "/data/mnist/t10k-labels-idx1-ubyte.gz"
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let inflated = try Gzip.decompress(raw, limits: InputLimits(maxFileBytes: 1 << 20), source: path)
        let labels = try IDX.parse(inflated, source: path)
        #expect(labels.dimensions == [10000])
        #expect(Array(labels.bytes.prefix(5)) == [7, 2, 1, 0, 4])   // the well-known first MNIST test labels
        #expect(throws: DataError.self) { try Gzip.decompress(raw.prefix(raw.count / 2), source: "half") }
        let refusal = "limit: decompresses to more than the file-size limit of 100 bytes (maxFileBytes)"
        #expect(throws: DataError.tooLarge(refusal, limit: .maxFileBytes)) {
            try Gzip.decompress(raw, limits: InputLimits(maxFileBytes: 100), source: "limit")
        }
        var corrupt = raw
        corrupt[corrupt.startIndex + 20] ^= 0xFF
        corrupt[corrupt.startIndex + 40] ^= 0xFF
        #expect(throws: DataError.self) { try Gzip.decompress(corrupt, source: "corrupt") }
    }

    @Test func embeddedMNISTLoads() throws {
        let test = try MNIST.load(directory: Self.repoRoot + "/data/mnist", split: .test)
        #expect(test.count == 10000 && test.height == 28 && test.width == 28 && test.classes == 10)
        #expect(test.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(throws: DataError.self) { try MNIST.load(directory: "/nonexistent", split: .test) }
    }

    @Test func mnistRejectsBadLabelsAndMismatchedCounts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnist-bad-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try idx([2, 2, 2], payload: 8).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte"))
        var labels = idx([2], payload: 0)
        labels.append(contentsOf: [3, 12])   // 12 is no digit
        try labels.write(to: URL(fileURLWithPath: dir + "/t10k-labels-idx1-ubyte"))
        do {
            _ = try MNIST.load(directory: dir, split: .test)
            Issue.record("label 12 accepted")
        } catch let e as DataError { #expect("\(e)".contains("label 12 at index 1 is out of range")) }
        try idx([3], payload: 3).write(to: URL(fileURLWithPath: dir + "/t10k-labels-idx1-ubyte"))
        #expect(throws: DataError.self) { try MNIST.load(directory: dir, split: .test) }   // 3 labels for 2 images
    }

    func header(_ json: String, data: Int) -> Data {
        var d = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(json.utf8))
        d.append(Data(repeating: 0, count: data))
        return d
    }

    @Test func safetensorsRoundTrip() throws {
        let t: [String: Tensor] = ["a": randomTensor([2, 3], seed: 1), "b.c": Tensor(scalar: 4),
                                   "e": Tensor(zeros: [0, 5])]
        let data = try SafeTensors.encode(t, metadata: ["k": "v"])
        let (back, meta) = try SafeTensors.decode(data)
        #expect(back == t && meta == ["k": "v"])
        #expect(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } % 8 == 0)   // header padded to 8
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(getpid()).safetensors").path
        try SafeTensors.write(t, to: path)
        #expect(try SafeTensors.read(path).tensors == t)
        try FileManager.default.removeItem(atPath: path)
    }

    @Test(arguments: [
        ("short", Data([1, 2, 3])),
        ("huge header length", Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x7B])),
        ("header past end", Data([100, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D])),
    ])
    func safetensorsRejectsBadLengths(_ name: String, _ data: Data) {
        #expect(throws: CheckpointError.self, "\(name)") { try SafeTensors.decode(data, source: name) }
    }

    @Test(arguments: [
        ("not json", #"{"a": "#, 0),
        ("not object", #"[1, 2]"#, 0),
        ("bad dtype", #"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, 4),
        ("size mismatch", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4),
        ("out of range", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4),
        ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                    + #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8),
        ("hole", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8),
        ("trailing bytes", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 8),
        ("negative shape", #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4),
        ("giant shape", #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, 4),
        ("reversed offsets", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, 4),
        ("bad metadata", #"{"__metadata__":{"k":1}}"#, 0),
    ])
    func safetensorsRejectsBadHeaders(_ name: String, _ json: String, _ bytes: Int) {
        do {
            _ = try SafeTensors.decode(header(json, data: bytes), source: name)
            Issue.record("\(name): accepted")
        } catch let e as CheckpointError {
            print("  \(name): \(e)")
            #expect("\(e)".hasPrefix("\(name): not a valid safetensors file"))
        } catch { Issue.record("\(name): unexpected error \(error)") }
    }

    @Test func modelFileRejectsOtherModels() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let path = dir + "/other-\(getpid()).safetensors"
        try SafeTensors.write(["conv.weight": Tensor(zeros: [2, 2])], to: path)
        #expect(throws: CheckpointError.self) { try ModelFile.load(path) }
        // A row-LSTM file whose fc does not fit its LSTM.
        let m = try makeClassifier(ModelConfig(hidden: 8), seed: 1)
        var state = m.stateDict()
        state["fc.weight"] = Tensor(zeros: [10, 9])
        try SafeTensors.write(state, to: path)
        #expect(throws: CheckpointError.self) { try ModelFile.load(path) }
        state["fc.weight"] = Tensor(repeating: .nan, shape: [10, 8])
        try SafeTensors.write(state, to: path)
        #expect(throws: CheckpointError.self) { try ModelFile.load(path) }
        // Settings that claim a huge model in a tiny file are refused before anything is allocated.
        let hostile = ModelConfig(hidden: 8192, layers: 16, bidirectional: true)
        try SafeTensors.write(["fc.weight": Tensor(zeros: [2, 2])], metadata: [ModelFile.configKey: hostile.json()],
                              to: path)
        #expect(throws: CheckpointError.self) { try ModelFile.load(path) }
        // Deeply nested settings JSON (JSONDecoder would trap) is an error too.
        try SafeTensors.write(["fc.weight": Tensor(zeros: [2, 2])],
                              metadata: [ModelFile.configKey: String(repeating: "[", count: 600)], to: path)
        #expect(throws: (any Error).self) { try ModelFile.load(path) }
        try FileManager.default.removeItem(atPath: path)
    }
}
