import Foundation

/// An error whose refusals of input over a limit (`DataError.tooLarge`, `CheckpointError.tooLarge`,
/// `ImageError.tooLarge`, `ImageTransformError.tooLarge`) say which settings were passed, so that a front end can
/// say how to raise them.
public protocol InputLimitError: Error {
    /// The settings the input exceeded; empty when the error is not about a limit.
    var exceededLimits: [InputLimits.Setting] { get }
}

/// The size limits on outside input (docs/limits.md): a value each reader takes (`limits:`, defaulting to
/// `.default`) and passes down, so that two callers may read with different limits at once. Errors refusing input
/// over a limit name the setting in these terms ("(maxFileBytes)") and list it (`InputLimitError`).
public struct InputLimits: Sendable, Equatable {
    /// The largest file any reader accepts (IDX, image, COCO and YOLO files, model and state files), and the
    /// largest decompressed IDX data: 1 GiB by default.
    public var maxFileBytes: Int
    /// The largest image width and height a decoder accepts, checked against the file header before any pixel
    /// memory is allocated: 16384 by default.
    public var maxWidth: Int
    public var maxHeight: Int
    /// The most pixels an image may have: 100 million by default.
    public var maxPixels: Int
    /// The most bytes an image folder's decoded images may hold in memory together (4 per sample, as `Float`):
    /// 8 GiB by default.
    public var maxDatasetBytes: Int
    /// The largest safetensors JSON header accepted, in bytes: 100 MB by default (the reference implementation's).
    public var maxHeaderBytes: Int

    public init(maxFileBytes: Int = 1 << 30, maxWidth: Int = 16384, maxHeight: Int = 16384,
                maxPixels: Int = 100_000_000, maxDatasetBytes: Int = 8 << 30, maxHeaderBytes: Int = 100_000_000) {
        self.maxFileBytes = maxFileBytes
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
        self.maxDatasetBytes = maxDatasetBytes
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// The limits of every read that names none.
    public static let `default` = InputLimits()

    /// One of the settings, as the library's errors name it (the raw value is the property's name).
    public enum Setting: String, Sendable, CaseIterable {
        case maxFileBytes, maxWidth, maxHeight, maxPixels, maxDatasetBytes, maxHeaderBytes
    }

    /// The image-size settings a `width`×`height` image exceeds (the product is computed without overflow).
    public func exceeded(width: Int, height: Int) -> [Setting] {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        return (width > maxWidth ? [.maxWidth] : []) + (height > maxHeight ? [.maxHeight] : [])
            + (overflow || pixels > maxPixels ? [.maxPixels] : [])
    }

    /// True when an image of this size is allowed.
    public func allows(width: Int, height: Int) -> Bool { exceeded(width: width, height: height).isEmpty }

    /// The deepest nesting of JSON arrays and objects accepted, checked before decoding: Foundation's
    /// `JSONDecoder` (Swift 6.3.1) traps instead of throwing when the data ends while more than 512 are open
    /// (513 bytes of `[` crash it; found by fuzzing, see Tests/Fuzz/regressions/coco). LSTMVision's own files
    /// nest at most 4 levels deep. A constant, not a setting: a deeper limit would let the decoder trap.
    public static let maxJSONDepth = 512

    /// Reads the file at `path` whole, refusing it (`DataError.tooLarge`) when it holds more than `maxFileBytes`
    /// bytes; its size is checked before it is read, and reading stops once the limit is passed (a pipe or a device
    /// reports no size). A missing file or a folder is `DataError.missing`/`.invalid`.
    public func readFile(_ path: String) throws -> Data {
        let limit = maxFileBytes
        func tooLarge(_ size: Int) -> DataError {
            .tooLarge("\(path): \(size) bytes, over the file-size limit of \(limit) bytes (maxFileBytes)",
                      limit: .maxFileBytes)
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw errno == ENOENT ? DataError.missing("\(path): no such file")
                                  : DataError.missing("\(path): cannot read: \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError.missing("\(path): cannot read: \(String(cString: strerror(errno)))")
        }
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
    public static func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, source: String,
                                                what: String) throws -> T {
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
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                    depth += 1
                    guard depth <= maxJSONDepth else {
                        throw DataError.invalid("\(source): not valid \(what) JSON: nested more than"
                                                + " \(maxJSONDepth) levels deep")
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
