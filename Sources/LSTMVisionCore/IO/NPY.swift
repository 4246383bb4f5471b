import Foundation

/// NumPy `.npy` files (format versions 1 and 2) of uint8 (`|u1`) or little-endian float32 (`<f4`), C order: what
/// Moving MNIST's `mnist_test_seq.npy` is (uint8 [frames, sequences, 64, 64]). The reader refuses, with one error
/// naming the file, a file over `limits.maxFileBytes`, a header over `limits.maxHeaderBytes`, another dtype, Fortran
/// order, and a shape that claims more data than the file holds, all before allocating the array.
public enum NPY {
    /// The element type of an array.
    public enum DType: String, Sendable { case uint8 = "|u1", float32 = "<f4" }

    /// An array's shape and its elements, row-major.
    public struct Array: Sendable, Equatable {
        public var shape: [Int]
        public var uint8: [UInt8]?
        public var float32: [Float]?
        public var dtype: DType { uint8 != nil ? .uint8 : .float32 }
        public var count: Int { shape.reduce(1, *) }

        public init(shape: [Int], uint8: [UInt8]) {
            precondition(shape.reduce(1, *) == uint8.count, "NPY.Array: shape \(shape) for \(uint8.count) bytes")
            (self.shape, self.uint8, self.float32) = (shape, uint8, nil)
        }

        public init(shape: [Int], float32: [Float]) {
            precondition(shape.reduce(1, *) == float32.count, "NPY.Array: shape \(shape) for \(float32.count) values")
            (self.shape, self.uint8, self.float32) = (shape, nil, float32)
        }
    }

    static let magic: [UInt8] = [0x93] + Swift.Array("NUMPY".utf8)

    /// Reads a `.npy` file within `limits`.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> Array {
        try decode(limits.readFile(path), source: path, limits: limits)
    }

    /// Parses `.npy` bytes; `source` names the input in errors.
    public static func decode(_ data: Data, source: String = "npy", limits: InputLimits = .default) throws -> Array {
        func fail(_ m: String) -> DataError { .invalid("\(source): not a readable .npy file: \(m)") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Swift.Array(bytes[0..<6]) == magic else {
            throw fail("no NumPy magic string (\\x93NUMPY) at the start")
        }
        let major = bytes[6]
        guard major == 1 || major == 2 else { throw fail("format version \(major).\(bytes[7]), expected 1.0 or 2.0") }
        let lengthBytes = major == 1 ? 2 : 4, start = 8 + lengthBytes
        guard bytes.count >= start else { throw fail("\(bytes.count) bytes, shorter than the header length field") }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        guard headerLength <= limits.maxHeaderBytes else {
            throw DataError.tooLarge("\(source): not a readable .npy file: header length \(headerLength) exceeds the"
                                     + " header limit of \(limits.maxHeaderBytes) bytes (maxHeaderBytes)",
                                     limit: .maxHeaderBytes)
        }
        guard headerLength <= bytes.count - start else {
            throw fail("the header claims \(headerLength) bytes, the file holds \(bytes.count - start) after its start")
        }
        guard let header = String(bytes: bytes[start..<(start + headerLength)], encoding: .ascii) else {
            throw fail("the header is not ASCII text")
        }
        let (dtype, shape) = try parseHeader(header, fail)
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(shape) has too many elements") }
            count = p
        }
        let width = dtype == .uint8 ? 1 : 4, body = start + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow, needed <= bytes.count - body else {
            throw fail("shape \(shape) of \(dtype.rawValue) needs \(overflow ? "more than Int.max" : "\(needed)") bytes"
                       + " of data, the file holds \(bytes.count - body)")
        }
        if dtype == .uint8 { return Array(shape: shape, uint8: Swift.Array(bytes[body..<(body + count)])) }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[body..<(body + needed)])) }
        }
        return Array(shape: shape, float32: values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) })
    }

    /// The dtype and shape of a header dictionary such as `{'descr': '|u1', 'fortran_order': False, 'shape': (20, 3),
    /// }`.
    static func parseHeader(_ header: String, _ fail: (String) -> DataError) throws -> (DType, [Int]) {
        func value(of key: String) throws -> Substring {
            for quote in ["'", "\""] {
                if let r = header.range(of: "\(quote)\(key)\(quote)") {
                    let rest = header[r.upperBound...].drop { $0 == " " }
                    guard rest.first == ":" else { throw fail("no ':' after '\(key)' in the header") }
                    return rest.dropFirst().drop { $0 == " " }
                }
            }
            throw fail("the header has no '\(key)' entry")
        }
        let descrValue = try value(of: "descr")
        guard let q = descrValue.first, q == "'" || q == "\"",
              let end = descrValue.dropFirst().firstIndex(of: q) else { throw fail("'descr' is not a quoted string") }
        let descr = String(descrValue[descrValue.index(after: descrValue.startIndex)..<end])
        let aliases: [String: DType] = ["|u1": .uint8, "<u1": .uint8, "u1": .uint8, "<f4": .float32]
        guard let dtype = aliases[descr] else {
            throw fail("dtype '\(descr)', expected uint8 ('|u1') or little-endian float32 ('<f4')")
        }
        let order = try value(of: "fortran_order")
        if order.hasPrefix("True") { throw fail("Fortran-ordered arrays are not supported (fortran_order: True)") }
        guard order.hasPrefix("False") else { throw fail("'fortran_order' is neither True nor False") }
        let shapeValue = try value(of: "shape")
        guard shapeValue.first == "(", let close = shapeValue.firstIndex(of: ")") else {
            throw fail("'shape' is not a tuple")
        }
        let items = shapeValue[shapeValue.index(after: shapeValue.startIndex)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard items.count <= 32 else { throw fail("shape has \(items.count) dimensions, NumPy allows at most 32") }
        let shape = try items.map { s -> Int in
            guard s.count <= 18, let d = Int(s), d >= 0 else { throw fail("shape entry '\(s)' is no dimension") }
            return d
        }
        return (dtype, shape)
    }

    /// The `.npy` bytes of `array`, as `np.save` writes them: version 1.0 (32 dimensions fit its 65535-byte header).
    public static func encode(_ array: Array) -> Data {
        precondition(array.shape.count <= 32, "NPY.encode: \(array.shape.count) dimensions, NumPy allows at most 32")
        let dims = array.shape.map(String.init).joined(separator: ", ") + (array.shape.count == 1 ? "," : "")
        var dict = "{'descr': '\(array.dtype.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        // NumPy pads the header with spaces and a final newline so that the data starts on a 64-byte boundary.
        let total = (10 + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - 10 - dict.utf8.count - 1) + "\n"
        let n = dict.utf8.count
        var out = Data(magic + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Swift.Array(dict.utf8))
        if let u = array.uint8 { out.append(contentsOf: u) } else if let f = array.float32 {
            f.map { $0.bitPattern.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes `array` atomically.
    public static func write(_ array: Array, to path: String) throws {
        try AtomicFile.write(encode(array), to: path)
    }
}
