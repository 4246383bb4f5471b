import CZlib
import Foundation

/// Decompresses gzip (or zlib) data through the system zlib, refusing output beyond `limits.maxFileBytes` bytes.
public enum Gzip {
    /// True when `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Inflates `data`; `source` names the input in errors.
    public static func decompress(_ data: Data, limits: InputLimits = .default, source: String) throws -> Data {
        let limit = limits.maxFileBytes
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.invalid("\(source): cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        var out = Data()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var status: Int32 = Z_OK
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: raw.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(raw.count)
            repeat {
                try buffer.withUnsafeMutableBufferPointer { b in
                    stream.next_out = b.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK || status == Z_STREAM_END else {
                        throw DataError.invalid("\(source): corrupt gzip data (zlib status \(status))")
                    }
                    out.append(b.baseAddress!, count: chunk - Int(stream.avail_out))
                }
                guard out.count <= limit else {
                    throw DataError.tooLarge("\(source): decompresses to more than the file-size limit of"
                                             + " \(limit) bytes (maxFileBytes)", limit: .maxFileBytes)
                }
                if status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0 {
                    throw DataError.invalid("\(source): truncated gzip data")
                }
            } while status != Z_STREAM_END
        }
        return out
    }
}
