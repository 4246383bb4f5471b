import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The `.npy` reader and writer against files numpy wrote (tools/make_npy_fixtures.py), its refusals, and the Moving
/// MNIST generator.
@Suite struct MovingMNISTTests {
    static func path(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/npy"),
                     "missing fixture npy/\(name)").path
    }

    @Test func readsWhatNumPyWrites() throws {
        let seq = try NPY.read(Self.path("uint8_seq.npy"))
        #expect(seq.shape == [3, 2, 4, 5] && seq.dtype == .uint8)
        #expect(seq.uint8 == (0..<120).map { UInt8($0 * 7 % 256) })
        let f = try NPY.read(Self.path("float32.npy"))
        #expect(f.shape == [2, 3] && f.float32 == (0..<6).map { Float($0) / 3 - 0.5 })
        let v2 = try NPY.read(Self.path("uint8_v2.npy"))
        #expect(v2.shape == [4] && v2.uint8 == [1, 2, 250, 255])
        let vector = try NPY.read(Self.path("vector.npy"))
        #expect(vector.shape == [5] && vector.float32 == [0, 1, 2, 3, 4])
    }

    @Test(arguments: ["uint8_seq.npy", "float32.npy", "vector.npy"])
    func writesTheBytesNumPyWrites(_ name: String) throws {
        // np.save's version-1.0 files, byte for byte: the same header text and padding to 64 bytes.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path(name)))
        #expect(NPY.encode(try NPY.decode(bytes)) == bytes)
    }

    @Test func roundTrips() throws {
        let a = NPY.Array(shape: Array(repeating: 1, count: 31) + [3], uint8: [7, 8, 9])
        #expect(try NPY.decode(NPY.encode(a)) == a)
        var f = NPY.Array(shape: [2], float32: [1.5, -0.25])
        f.shape = [2, 1]
        #expect(try NPY.decode(NPY.encode(f)) == f)
    }

    static func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func refusesOtherFilesWithOneLine() throws {
        let f64 = try Self.path("float64.npy")
        #expect(Self.message { _ = try NPY.read(f64) }
                == "\(f64): not a readable .npy file: dtype '<f8', expected uint8 ('|u1') or little-endian float32"
                + " ('<f4')")
        #expect(Self.message { _ = try NPY.read(Self.path("big_endian.npy")) }.contains("dtype '>f4'"))
        #expect(Self.message { _ = try NPY.read(Self.path("fortran.npy")) }.contains("Fortran-ordered"))
        let float32 = try Self.path("float32.npy")
        #expect(Self.message { _ = try MovingMNIST.read(float32) }
                == "\(float32): frame sequences must be uint8, found <f4")
        let v2 = try Self.path("uint8_v2.npy")
        #expect(Self.message { _ = try MovingMNIST.read(v2) }
                == "\(v2): frame sequences must be [frames, sequences, rows, cols] (as mnist_test_seq.npy), found"
                + " shape [4]")
    }

    @Test func refusesHostileHeaders() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path("uint8_seq.npy"))))
        func decode(_ b: [UInt8], limits: InputLimits = .default) -> String {
            Self.message { _ = try NPY.decode(Data(b), source: "x.npy", limits: limits) }
        }
        func replacing(_ a: String, _ b: String) -> [UInt8] {   // within the header, same length
            let (a, b) = ([UInt8](a.utf8), [UInt8](b.utf8))
            let at = (0...(good.count - a.count)).first { Array(good[$0..<($0 + a.count)]) == a }!
            var out = good
            out.replaceSubrange(at..<(at + a.count), with: b.prefix(a.count))
            return out
        }
        #expect(decode(replacing("(3, 2, 4, 5)", "(3,999,4,5) "))
                == "x.npy: not a readable .npy file: shape [3, 999, 4, 5] of |u1 needs 59940 bytes of data, the file"
                + " holds 120")
        #expect(decode(replacing("(3, 2, 4, 5)", "(9999999999)")).contains("needs 9999999999 bytes"))
        #expect(decode(replacing("(3, 2, 4, 5)", "(1<<62, 4,5)")).contains("shape entry '1<<62'"))
        #expect(decode(replacing("(3, 2, 4, 5)", "(-3, 2, 4,5)")).contains("shape entry '-3'"))
        #expect(decode(replacing("(3, 2, 4, 5)", "(99999,9999)")).contains("[99999, 9999] of |u1 needs 999890001"))
        func header(_ text: String) -> [UInt8] {   // a version-1.0 file of that header and 8 bytes of data
            NPY.magic + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)] + Array(text.utf8)
                + [UInt8](repeating: 0, count: 8)
        }
        let overflow = "{'descr': '<f4', 'fortran_order': False, 'shape': (3037000500, 3037000500, 4), }"
        #expect(decode(header(overflow)).contains("has too many elements"))
        let times = "{'descr': '<f4', 'fortran_order': False, 'shape': (3037000499, 3037000499), }"
        #expect(decode(header(times)).contains("needs more than Int.max bytes"))
        #expect(decode(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }")) == "no error")
        #expect(decode(header("{'descr': '<f4', 'fortran_order': 1, 'shape': (2,), }")).contains("neither True"))
        #expect(decode(header("{'descr': <f4, 'fortran_order': False, 'shape': (2,), }")).contains("not a quoted"))
        #expect(decode(header("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }")).contains("not a tuple"))
        var longHeader = good; longHeader[8] = 0xFF; longHeader[9] = 0xFF
        #expect(decode(longHeader) == "x.npy: not a readable .npy file: the header claims 65535 bytes, the file holds"
                + " 238 after its start")
        #expect(decode(good, limits: InputLimits(maxHeaderBytes: 64)).contains("(maxHeaderBytes)"))
        var version = good; version[6] = 3
        #expect(decode(version).contains("format version 3.0"))
        #expect(decode(Array(good.prefix(9))).contains("no NumPy magic"))
        #expect(decode(Array(good.prefix(40))).contains("the header claims 118 bytes"))
        #expect(decode(replacing("'descr'", "'desc' ")).contains("no 'descr' entry"))
        #expect(decode(good) == "no error")
    }

    static func digits() -> ImageDataset {
        // Ten 28×28 squares of different sizes, pixel value 1, as stand-ins for MNIST digits.
        var pixels = [Float](repeating: 0, count: 10 * 784)
        for d in 0..<10 { for r in 4..<(10 + d) { for c in 4..<(10 + d) { pixels[d * 784 + r * 28 + c] = 1 } } }
        return ImageDataset(height: 28, width: 28, channels: 1, pixels: pixels, labels: Array(0..<10),
                            classNames: (0...9).map(String.init))
    }

    @Test func movingMNISTIsDeterministicAndBounces() throws {
        let a = MovingMNIST.generate(from: Self.digits(), sequences: 6, frames: 30, seed: 5)
        #expect(a.shape == [30, 6, 64, 64] && a.dtype == .uint8)
        #expect(a == MovingMNIST.generate(from: Self.digits(), sequences: 6, frames: 30, seed: 5))
        #expect(a != MovingMNIST.generate(from: Self.digits(), sequences: 6, frames: 30, seed: 6))
        // One digit per frame: its top-left corner moves 3.6 px per frame (≤ 4 px along each axis after truncation),
        // stays in 0...36, and over 30 frames (108 px of travel) reaches an edge.
        let one = MovingMNIST.generate(from: Self.digits(), sequences: 4, frames: 30, digitsPerFrame: 1, seed: 9)
        let px = one.uint8!
        for s in 0..<4 {
            var corners: [(Int, Int)] = []
            for t in 0..<30 {
                let base = (t * 4 + s) * 4096
                let on = (0..<4096).filter { px[base + $0] == 255 }
                #expect(!on.isEmpty)
                corners.append((on.map { $0 / 64 }.min()! - 4, on.map { $0 % 64 }.min()! - 4))
            }
            #expect(corners.allSatisfy { (0...36).contains($0.0) && (0...36).contains($0.1) })
            for (p, q) in zip(corners, corners.dropFirst()) {
                let step = (Double((q.0 - p.0) * (q.0 - p.0) + (q.1 - p.1) * (q.1 - p.1))).squareRoot()
                #expect(abs(q.0 - p.0) <= 4 && abs(q.1 - p.1) <= 4 && step <= 3.6 + 1.5, "\(p) → \(q)")
            }
            #expect(corners.contains { [0, 36].contains($0.0) || [0, 36].contains($0.1) })
        }
        // Two digits: every frame is the pixelwise maximum, here of two squares of value 255.
        #expect(Set(a.uint8!) == [0, 255])
        let batch = MovingMNIST.batch(a, 1..<3)
        #expect(batch.shape == [2, 30, 1, 64, 64])
        #expect(batch[1, 7, 0, 10, 20] == Float(a.uint8![(7 * 6 + 2) * 4096 + 660]) / 255)
    }

    @Test func commandWritesTheLayoutOfTheMovingMNISTFile() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mm-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLITests().run(["moving-mnist", "--out", out, "--train", "3", "--test", "2", "--frames", "5",
                                    "--seed", "4"])
        #expect(r.code == 0, "\(r.err)")
        let train = try MovingMNIST.read(out + "/train.npy"), test = try MovingMNIST.read(out + "/test.npy")
        #expect(train.shape == [5, 3, 64, 64] && test.shape == [5, 2, 64, 64])
        // Digits of MNIST (anti-aliased grey values), and the same sequences again from the same seed.
        #expect(Set(train.uint8!).count > 100 && train.uint8!.contains(255))
        let digits = try MNIST.load(directory: MNIST.defaultDirectory(), split: .test)
        #expect(test == MovingMNIST.generate(from: digits, sequences: 2, frames: 5, seed: 5))
        let bad = try CLITests().run(["moving-mnist", "--out", out, "--frames", "0"])
        #expect(bad.code != 0 && bad.err.contains("--frames must be in 1...1000, got 0"), "\(bad.err)")
    }
}
