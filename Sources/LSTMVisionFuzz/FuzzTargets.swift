// The parsers under fuzzing and the mutator, shared by the fuzzing executable (main.swift) and the
// in-test replay and mutation run (Tests/LSTMVisionTests/FuzzRegressionTests.swift).

import Foundation
import LSTMVision

/// The parsers under test.
enum FuzzTarget: String, CaseIterable, Sendable {
    case idx, safetensors, image, coco, yolo, yaml, webp, jpeg, tfevents, npy

    /// Parses `bytes` as an outside file is parsed; damaged input must throw one of the project's error types.
    func parse(_ bytes: [UInt8]) throws {
        switch self {
        case .idx:
            // As IDX.read does with the file's bytes: gzip or zlib data is inflated first.
            let raw = Data(bytes)
            let data = Gzip.isGzip(raw) ? try Gzip.decompress(raw, source: "fuzz") : raw
            _ = try IDX.parse(data, source: "fuzz")
        case .safetensors:
            // As the model and detector loaders do: the file, then the settings in its metadata (or, for a model
            // file without them, the row-LSTM its tensor names and shapes describe). A file that holds neither
            // is still a valid safetensors file, so those refusals are not this target's result.
            let (tensors, metadata) = try SafeTensors.decode(Data(bytes), source: "fuzz")
            for settings in [{ _ = try ModelFile.config(in: metadata, tensors: tensors, source: "fuzz") },
                             { _ = try DetectorFile.config(in: metadata, tensors: tensors, source: "fuzz") }] {
                do { try settings() } catch where Self.isParserError(error) {}
            }
        case .image:
            _ = try ImageCodecs.decode(fixPNGChecksums(bytes), source: "fuzz")
        case .webp:
            // WebP through libwebp (lossy, lossless, alpha, extended headers), after the RIFF size is made right.
            _ = try ImageCodecs.decode(fixRIFFSize(bytes), source: "fuzz")
        case .jpeg:
            // JPEGs whose marker segments matter: EXIF orientation (read by hand in EXIF.swift), CMYK and YCCK.
            _ = try ImageCodecs.decode(bytes, source: "fuzz")
        case .coco:
            // A JSON array is a results file, checked against a fixed dataset; anything else an annotation file.
            if bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[") {
                _ = try COCODetection.decode(Data(bytes), source: "fuzz", for: cocoDataset)
            } else {
                _ = try COCODataset.decode(Data(bytes), source: "fuzz")
            }
        case .yolo:
            // A label file for a 320×240 image and 10 classes; the same bytes read as a class-names file too,
            // whose refusal is not this target's result.
            _ = try YOLO.parseLabels(Data(bytes), source: "fuzz", width: 320, height: 240, classes: 10)
            do { _ = try YOLO.parseClassNames(Data(bytes), source: "fuzz") } catch where Self.isParserError(error) {}
        case .yaml:
            // An Ultralytics data.yaml, read with Yams: the keys, the split folders and the names (no folder checks).
            _ = try YOLO.DataFile.parse(Data(bytes), source: "fuzz", base: "/fuzz")
        case .tfevents:
            // A TensorBoard event file, as `train --resume` reads the earlier ones: TFRecords, then each event
            // (the records' CRC-32C stops most mutations before swift-protobuf, which is fuzzed upstream).
            _ = try TensorBoardLog.scalars(decoding: bytes, source: "fuzz")
        case .npy:
            // A NumPy .npy file (Moving MNIST's sequences): the header's dtype, order and shape against the data.
            _ = try NPY.decode(Data(bytes), source: "fuzz")
        }
    }

    /// True for the error types the parsers document: anything else escaping them is a bug.
    static func isParserError(_ error: any Error) -> Bool {
        error is DataError || error is CheckpointError || error is ImageError
    }

    /// Parses `bytes`, trapping (so that libFuzzer or the harness records the input) on an undocumented error.
    /// Returns true when the input parsed, false when it was refused.
    @discardableResult
    func run(_ bytes: [UInt8]) -> Bool {
        do {
            try parse(bytes)
            return true
        } catch where Self.isParserError(error) {
            return false
        } catch {
            fatalError("\(rawValue): unexpected error type \(type(of: error)): \(error)")
        }
    }
}

/// The dataset COCO results are checked against: images 1...20 of 320x240 and categories 1...9.
let cocoDataset = COCODataset(images: (1...20).map { .init(id: $0, fileName: "\($0).png", width: 320, height: 240) },
                              annotations: [], categories: (1...9).map { .init(id: $0, name: "c\($0)") })

/// libpng rejects chunks whose CRC is wrong, so almost every mutation of a PNG would stop there; writing
/// the right CRCs lets the fuzzer reach the decoder. Other inputs are returned unchanged.
func fixPNGChecksums(_ input: [UInt8]) -> [UInt8] {
    guard input.count >= 8, input.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return input }
    var b = input
    var p = 8
    while p + 12 <= b.count {
        let length = Int(b[p]) << 24 | Int(b[p + 1]) << 16 | Int(b[p + 2]) << 8 | Int(b[p + 3])
        guard length <= b.count - p - 12 else { break }
        let crc = crc32(b[(p + 4)..<(p + 8 + length)])
        for k in 0..<4 { b[p + 8 + length + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(k))) }
        p += 12 + length
    }
    return b
}

/// libwebp treats a RIFF size that disagrees with the data as truncation or trailing bytes, so most insertions
/// and deletions would stop there; writing the right size lets the fuzzer reach the decoder. Other inputs are
/// returned unchanged.
func fixRIFFSize(_ input: [UInt8]) -> [UInt8] {
    guard input.count >= 12, input.starts(with: Array("RIFF".utf8)), input.count - 8 <= Int(UInt32.max) else {
        return input
    }
    var b = input
    let size = UInt32(b.count - 8)
    for k in 0..<4 { b[4 + k] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(k))) }
    return b
}

let crcTable: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for x in bytes { c = crcTable[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}

// MARK: - Seeded mutation

/// A deterministic mutator: splitmix64 random numbers driving byte-level and structure-aware mutations.
struct Mutator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }

    static let interesting: [UInt64] = [0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF,
                                        0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, UInt64.max]

    /// One to four mutations of `input`; `corpus` supplies splice partners.
    mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var b = input
        for _ in 0...below(4) {
            switch below(11) {
            case 0 where !b.isEmpty:   // flip one bit
                b[below(b.count)] ^= UInt8(1 << below(8))
            case 1 where !b.isEmpty:   // set a random byte
                b[below(b.count)] = UInt8(truncatingIfNeeded: next())
            case 2:                    // insert 1 to 16 random bytes
                let at = below(b.count + 1)
                b.insert(contentsOf: (0...below(16)).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 3 where !b.isEmpty:   // delete a range
                let at = below(b.count), n = 1 + below(min(64, b.count - at))
                b.removeSubrange(at..<(at + n))
            case 4 where b.count >= 4: // overwrite a 1/2/4/8-byte field, either endianness, with an interesting value
                let width = [1, 2, 4, 8][below(4)]
                guard b.count >= width else { break }
                writeInteger(&b, at: below(b.count - width + 1), width: width,
                             value: Self.interesting[below(Self.interesting.count)])
            case 5 where b.count >= 4: // tweak a length field: read a 4-byte big-endian or 8-byte little-endian
                                       // integer, nudge it
                let width = below(2) == 0 ? 4 : 8
                guard b.count >= width else { break }
                let at = below(4) == 0 ? 0 : below(b.count - width + 1)
                let bigEndian = width == 4
                let v = readInteger(b, at: at, width: width, bigEndian: bigEndian)
                let deltas: [UInt64] = [1, UInt64.max, 8, 0 &- 8, 0x100, 0 &- 0x100]
                let nv = below(3) == 0 ? v &* 2 : v &+ deltas[below(deltas.count)]
                writeInteger(&b, at: at, width: width, value: nv, bigEndian: bigEndian)
            case 6 where !corpus.isEmpty: // splice: our head, another seed's tail
                let other = corpus[below(corpus.count)]
                let cut = below(b.count + 1), from = below(other.count + 1)
                b = Array(b[..<cut]) + other[from...]
            case 7 where !b.isEmpty:   // truncate
                b.removeLast(below(b.count) + 1)
            case 8 where !b.isEmpty:   // duplicate a chunk in place
                let at = below(b.count), n = 1 + below(min(256, b.count - at))
                b.insert(contentsOf: b[at..<(at + n)], at: at)
            case 9:                    // rewrite an ASCII number (PGM sizes, JSON values) with an extreme one
                let digits = b.indices.filter { (0x30...0x39).contains(b[$0]) }
                guard !digits.isEmpty else { break }
                var s = digits[below(digits.count)], e = s
                while s > 0 && (0x30...0x39).contains(b[s - 1]) { s -= 1 }
                while e + 1 < b.count && (0x30...0x39).contains(b[e + 1]) { e += 1 }
                let numbers = ["0", "-1", "1e308", "999999999", "4294967296", "18446744073709551616", "1.5", "nan",
                               "65536"]
                b.replaceSubrange(s...e, with: Array(numbers[below(numbers.count)].utf8))
            case 10 where !b.isEmpty:  // repeat one byte many times
                let at = below(b.count)
                b.insert(contentsOf: repeatElement(b[at], count: 1 + below(512)), at: at)
            default:
                break
            }
        }
        return b
    }

    func readInteger(_ b: [UInt8], at: Int, width: Int, bigEndian: Bool) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<width { v |= UInt64(b[at + (bigEndian ? width - 1 - k : k)]) << (8 * UInt64(k)) }
        return v
    }

    mutating func writeInteger(_ b: inout [UInt8], at: Int, width: Int, value: UInt64, bigEndian: Bool? = nil) {
        let be = bigEndian ?? (below(2) == 0)
        for k in 0..<width { b[at + (be ? width - 1 - k : k)] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
    }
}

