import Foundation

/// Reads IDX files (the MNIST format), plain or gzip-compressed. The file, its decompressed data and the
/// header's dimensions are each checked against `limits.maxFileBytes` and the real data size before
/// anything is allocated.
public enum IDX {
    /// An IDX array of unsigned bytes: its dimensions and its data.
    public struct Array: Sendable {
        public let dimensions: [Int]
        public let bytes: [UInt8]
    }

    /// Reads an unsigned-byte IDX file (type 0x08), such as MNIST images or labels.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> Array {
        let raw = try limits.readFile(path)
        let data = Gzip.isGzip(raw) ? try Gzip.decompress(raw, limits: limits, source: path) : raw
        return try parse(data, source: path, limits: limits)
    }

    /// Parses IDX bytes; `source` names the input in errors.
    public static func parse(_ data: Data, source: String, limits: InputLimits = .default) throws -> Array {
        let b = [UInt8](data)
        guard b.count >= 4 else {
            throw DataError.invalid("\(source): not an IDX file (\(b.count) bytes, header needs 4)")
        }
        guard b[0] == 0, b[1] == 0 else {
            throw DataError.invalid("\(source): not an IDX file (bad magic \(b[0]) \(b[1]))")
        }
        guard b[2] == 0x08 else {
            throw DataError.invalid("\(source): IDX element type 0x\(String(b[2], radix: 16))"
                                    + " is not unsigned byte (0x08)")
        }
        let rank = Int(b[3])
        guard rank >= 1, rank <= 4 else {
            throw DataError.invalid("\(source): IDX rank \(rank) is not between 1 and 4")
        }
        let headerSize = 4 + 4 * rank
        guard b.count >= headerSize else { throw DataError.invalid("\(source): truncated IDX header") }
        var dims: [Int] = []
        var total = 1
        for k in 0..<rank {
            let o = 4 + 4 * k
            let d = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            dims.append(d)
            total = total.multipliedReportingOverflow(by: d).overflow ? Int.max : total * d
        }
        guard total <= limits.maxFileBytes else {
            throw DataError.tooLarge("\(source): IDX header claims \(dims) = \(total) bytes, over the file-size"
                                     + " limit of \(limits.maxFileBytes) bytes (maxFileBytes)", limit: .maxFileBytes)
        }
        let available = b.count - headerSize
        guard available >= total else {
            throw DataError.invalid("\(source): truncated IDX data: header \(dims) needs \(total) bytes,"
                                    + " file has \(available)")
        }
        guard available == total else {
            throw DataError.invalid("\(source): IDX file has \(available - total) bytes after the data its header"
                                    + " \(dims) describes")
        }
        return Array(dimensions: dims, bytes: Swift.Array(b[headerSize...]))
    }
}
