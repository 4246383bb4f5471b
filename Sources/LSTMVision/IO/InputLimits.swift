import Foundation

/// The size limits on outside input that are not tied to one format (docs/limits.md), and the one bounded
/// way of reading a file whole: its size is checked before it is read, and reading stops once the limit is
/// passed (a pipe or a device reports no size), so no file can make the process allocate more than the limit.
/// Image sizes are `ImageLimits.default`, the safetensors header `SafeTensors.maxHeaderBytes`.
public enum InputLimits {
    /// The largest file any reader accepts (IDX, image, COCO and YOLO files, model and state files), and the
    /// largest decompressed IDX data: 1 GiB by default; `--max-file-bytes` sets it. A process-wide setting:
    /// set it once at start-up, before files are read on other threads.
    public nonisolated(unsafe) static var maxFileBytes = 1 << 30

    /// The deepest nesting of JSON arrays and objects accepted, checked before decoding: Foundation's
    /// `JSONDecoder` (Swift 6.3.1) traps instead of throwing when the data ends while more than 512 are open
    /// (513 bytes of `[` crash it; found by fuzzing, see Tests/Fuzz/regressions/coco). LSTMVision's own files
    /// nest at most 4 levels deep.
    public static let maxJSONDepth = 512

    /// Reads the file at `path` whole, refusing it (`DataError.tooLarge`, naming the option) when it holds
    /// more than `limit` bytes; a missing file or a folder is `DataError.missing`/`.invalid`.
    public static func readFile(_ path: String, limit: Int = maxFileBytes) throws -> Data {
        func tooLarge(_ size: Int) -> DataError {
            .tooLarge("\(path): \(size) bytes, over the limit of \(limit) bytes (--max-file-bytes)")
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw errno == ENOENT ? DataError.missing("\(path): no such file") : DataError.missing("\(path): cannot read: \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DataError.missing("\(path): cannot read: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT != S_IFDIR else { throw DataError.invalid("\(path): is a directory, not a file") }
        let size = Int(info.st_size)
        guard size <= limit else { throw tooLarge(size) }
        var data = Data(capacity: size)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError.missing("\(path): cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return data }
            guard data.count + n <= limit else { throw tooLarge(data.count + n) }
            data.append(contentsOf: chunk[0..<n])
        }
    }

    /// Decodes outside JSON (a COCO file, a checkpoint's settings), first refusing nesting deeper than
    /// `maxJSONDepth`; every fault is one `DataError.invalid` naming `source`, `what` it should be and where.
    public static func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, source: String, what: String) throws -> T {
        try checkNesting(data, source: source, what: what)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw DataError.invalid("\(source): not valid \(what) JSON: \(message(error))")
        }
    }

    /// Refuses JSON nested more than `maxJSONDepth` levels (see there), counting brackets outside strings.
    public static func checkNesting(_ data: Data, source: String, what: String) throws {
        var depth = 0, inString = false, escaped = false
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            for byte in bytes {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                    depth += 1
                    guard depth <= maxJSONDepth else {
                        throw DataError.invalid("\(source): not valid \(what) JSON: nested more than \(maxJSONDepth) levels deep")
                    }
                } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                    depth -= 1
                }
            }
        }
    }

    /// "annotations[3].bbox: expected Double, found a string" rather than Foundation's nested description.
    private static func message(_ error: DecodingError) -> String {
        func place(_ path: [any CodingKey]) -> String {
            let p = path.enumerated().map { k, key in
                key.intValue.map { "[\($0)]" } ?? (k == 0 ? key.stringValue : "." + key.stringValue)
            }.joined()
            return p.isEmpty ? "" : p + ": "
        }
        switch error {
        case let .keyNotFound(key, c):
            return "\(place(c.codingPath))missing key '\(key.stringValue)'"
        case let .typeMismatch(type, c), let .valueNotFound(type, c):
            return "\(place(c.codingPath))expected \(type): \(c.debugDescription)"
        case let .dataCorrupted(c):
            let cause = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return place(c.codingPath) + c.debugDescription + (cause.map { " (\($0))" } ?? "")
        @unknown default:
            return "\(error)"
        }
    }
}
