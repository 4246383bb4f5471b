import Foundation

/// Reads and writes the safetensors format (an 8-byte little-endian header length, a JSON header,
/// then the raw little-endian data), compatible with `safetensors.torch.save_file` / `load_file`.
/// Reading validates the whole header against the real file size before allocating anything it claims.
public enum SafeTensors {
    /// Encodes named tensors as F32 with optional string metadata.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape,
                            "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // pad with spaces so the data is aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            tensors[name]!.scalars.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: UInt32.self) { u in
                    var le = [UInt32](repeating: 0, count: u.count)
                    for i in 0..<u.count { le[i] = u[i].littleEndian }
                    le.withUnsafeBytes { out.append(contentsOf: $0) }
                }
            }
        }
        return out
    }

    /// Writes `tensors` to `path` atomically.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }

    /// Reads a safetensors file of at most `limits.maxFileBytes` bytes (checked before it is read) whose header
    /// holds at most `limits.maxHeaderBytes`; every fault becomes one error naming the file.
    public static func read(_ path: String, limits: InputLimits = .default)
        throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try decode(limits.readFile(path), source: path, limits: limits)
    }

    /// Parses safetensors bytes; `source` names the input in errors.
    public static func decode(_ data: Data, source: String = "safetensors", limits: InputLimits = .default)
        throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ m: String) -> CheckpointError { .invalid("\(source): not a valid safetensors file: \(m)") }
        guard data.count >= 8 else { throw fail("\(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | (UInt64($1.element) << (8 * UInt64($1.offset)))
        }
        guard headerLength <= UInt64(limits.maxHeaderBytes) else {
            let message = "header length \(headerLength) exceeds the header limit of \(limits.maxHeaderBytes) bytes"
            throw CheckpointError.tooLarge("\(source): not a valid safetensors file: \(message) (maxHeaderBytes)",
                                           limit: .maxHeaderBytes)
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the \(data.count)-byte file")
        }
        let hl = Int(headerLength)
        let headerBytes = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + hl))
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        try InputLimits.checkNesting(headerBytes, source: source, what: "safetensors header")
        guard let object = try? JSONSerialization.jsonObject(with: headerBytes),
              let header = object as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let dataStart = 8 + hl, dataLength = data.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("entry '\(name)' is not an object") }
            guard let dtype = info["dtype"] as? String else { throw fail("entry '\(name)' has no dtype") }
            guard let size = elementSize[dtype] else { throw fail("entry '\(name)' has unsupported dtype \(dtype)") }
            guard let shapeAny = info["shape"] as? [Any], let shape = integers(shapeAny),
                  shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("entry '\(name)' has an invalid shape")
            }
            guard let offAny = info["data_offsets"] as? [Any], let offs = integers(offAny), offs.count == 2,
                  offs[0] >= 0, offs[0] <= offs[1] else { throw fail("entry '\(name)' has invalid data_offsets") }
            var bytes = size
            for d in shape {
                let (p, o) = bytes.multipliedReportingOverflow(by: d)
                guard !o, p <= dataLength else {
                    throw fail("entry '\(name)' shape \(shape) needs more bytes than the file holds")
                }
                bytes = p
            }
            guard offs[1] <= dataLength else {
                throw fail("entry '\(name)' data_offsets \(offs) run past the \(dataLength) data bytes")
            }
            guard offs[1] - offs[0] == bytes else {
                throw fail("entry '\(name)' of shape \(shape) and dtype \(dtype) needs \(bytes) bytes,"
                           + " data_offsets give \(offs[1] - offs[0])")
            }
            entries.append((name, dtype, shape, offs[0], offs[1]))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for e in entries {
            guard e.begin == cursor else {
                throw fail(e.begin < cursor ? "entry '\(e.name)' overlaps the previous tensor"
                                            : "a hole of \(e.begin - cursor) bytes before '\(e.name)'")
            }
            cursor = e.end
        }
        guard cursor == dataLength else {
            throw fail("\(dataLength - cursor) bytes after the last tensor are not described by the header")
        }
        var tensors: [String: Tensor] = [:]
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            for e in entries {
                let n = e.shape.reduce(1, *)
                var s = [Float](repeating: 0, count: n)
                let p = base + e.begin
                for i in 0..<n { s[i] = convert(p, index: i, dtype: e.dtype) }
                tensors[e.name] = Tensor(shape: e.shape, scalars: s)
            }
        }
        return (tensors, metadata)
    }

    static let elementSize: [String: Int] = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1]

    private static func integers(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded() else { return nil }
            guard d >= 0, d < 9.0e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    private static func convert(_ p: UnsafeRawPointer, index i: Int, dtype: String) -> Float {
        switch dtype {
        case "F32": return Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i,
                                                                                  as: UInt32.self)))
        case "F64": return Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i,
                                                                                         as: UInt64.self))))
        case "F16": return Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i,
                                                                                          as: UInt16.self))))
        case "BF16": return Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i,
                                                                                          as: UInt16.self))) << 16)
        case "I64": return Float(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
        case "I32": return Float(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
        default: return Float(p.load(fromByteOffset: i, as: UInt8.self))
        }
    }
}
