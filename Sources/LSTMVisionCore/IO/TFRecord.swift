import Foundation

/// TFRecord framing, the container of TensorBoard's event files: each record is its length (uint64), the masked
/// CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data, all little-endian.
public enum TFRecord {
    /// One record's bytes around `data`.
    public static func frame<Bytes: Collection>(_ data: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        let header = littleEndian(UInt64(data.count))
        return header + littleEndian(CRC32C.masked(header)) + Array(data) + littleEndian(CRC32C.masked(data))
    }

    /// The records of a TFRecord file's bytes (`source` names it in errors), with `truncated` true when the last one
    /// is incomplete, as a writer killed mid-record leaves it (TensorBoard's readers stop there too). A checksum
    /// that does not match is an error naming the record's offset.
    public static func records(in bytes: [UInt8], source: String) throws -> (records: [[UInt8]], truncated: Bool) {
        var records: [[UInt8]] = [], at = 0
        while at < bytes.count {
            guard bytes.count - at >= 12 else { return (records, true) }
            let header = bytes[at..<(at + 8)]
            guard readUInt32(bytes, at + 8) == CRC32C.masked(header) else {
                throw DataError.invalid("\(source): the length of the record at byte \(at) fails its CRC-32C")
            }
            let length = header.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let start = at + 12
            guard length <= UInt64(bytes.count - start), bytes.count - start - Int(length) >= 4 else {
                return (records, true)
            }
            let data = Array(bytes[start..<(start + Int(length))])
            guard readUInt32(bytes, start + Int(length)) == CRC32C.masked(data) else {
                throw DataError.invalid("\(source): the data of the record at byte \(at) fails its CRC-32C")
            }
            records.append(data)
            at = start + Int(length) + 4
        }
        return (records, false)
    }

    /// The records of the TFRecord file at `path`, read whole within `limits.maxFileBytes` (see `records(in:)`).
    public static func read(_ path: String, limits: InputLimits = .default) throws
        -> (records: [[UInt8]], truncated: Bool) {
        try records(in: [UInt8](try limits.readFile(path)), source: path)
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << ($1 * 8) }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), which TFRecord uses. Written here because Swift on Linux
/// has no library for it and zlib has only CRC-32 (another polynomial); a byte-at-a-time table suffices for the
/// small records of a training log.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
    }

    /// The checksum of `bytes`.
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }

    /// TFRecord's masking of a checksum (rotated right by 15 bits, plus a constant), so that a CRC of data that
    /// holds CRCs stays strong.
    public static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    /// The inverse of `mask`.
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }

    /// The masked checksum of `bytes`.
    public static func masked<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        mask(checksum(bytes))
    }
}
