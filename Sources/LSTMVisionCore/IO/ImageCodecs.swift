import CImageShim
import CPNG
import Foundation

/// Why an image file could not be read or written; the message names the file and the fault.
public enum ImageError: Error, CustomStringConvertible, Equatable, InputLimitError {
    case unknownFormat(path: String)
    case truncated(path: String, format: String)
    case corrupt(path: String, format: String, detail: String)
    case unsupported(path: String, detail: String)
    /// An image over the size `limits` allow (`maxWidth`, `maxHeight`, `maxPixels`), found in its header.
    case tooLarge(path: String, width: Int, height: Int, limits: InputLimits)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownFormat(path): return "\(path): not a PNG, JPEG, PGM or PPM file"
        case let .truncated(path, format): return "\(path): truncated \(format) data"
        case let .corrupt(path, format, detail): return "\(path): corrupt \(format) data: \(detail)"
        case let .unsupported(path, detail): return "\(path): unsupported \(detail)"
        case let .tooLarge(path, width, height, limits):
            return "\(path): image of \(width)x\(height) exceeds the limits of \(limits.maxWidth)x\(limits.maxHeight)"
                + " and \(limits.maxPixels) pixels (maxWidth, maxHeight, maxPixels)"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        }
    }

    /// The size settings a too-large image passed (all three when its header's size is not known).
    public var exceededLimits: [InputLimits.Setting] {
        guard case let .tooLarge(_, width, height, limits) = self else { return [] }
        let passed = limits.exceeded(width: width, height: height)
        return passed.isEmpty ? [.maxWidth, .maxHeight, .maxPixels] : passed
    }
}

/// Reads PNG, JPEG and binary PGM/PPM files into `Image` (values in [0, 255]) and writes PNG and PGM/PPM.
/// The format is chosen from the file's magic bytes, never its extension.
public enum ImageCodecs {
    /// Reads the image at `path`; throws `ImageError` for damaged, unsupported or oversized images and
    /// `DataError` for a missing file or one over `limits.maxFileBytes` (refused before it is read).
    public static func read(_ path: String, limits: InputLimits = .default) throws -> Image {
        try decode([UInt8](limits.readFile(path)), source: path, limits: limits)
    }

    /// Decodes an encoded image held in memory; `source` names it in error messages.
    public static func decode(_ data: [UInt8], source: String, limits: InputLimits = .default) throws -> Image {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(data, source: source, limits: limits) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try decodeJPEG(data, source: source, limits: limits) }
        if data.count >= 2 && data[0] == UInt8(ascii: "P")
            && (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(data[1]) {
            return try decodePNM(data, source: source, limits: limits)
        }
        throw ImageError.unknownFormat(path: source)
    }

    /// Writes an 8-bit grey or RGB PNG; samples are clamped to [0, 255] and rounded (NaN becomes 0).
    public static func writePNG(_ image: Image, to path: String) throws {
        var bytes = quantize(image)
        var header = png_image()
        header.version = UInt32(PNG_IMAGE_VERSION)
        header.width = UInt32(image.width)
        header.height = UInt32(image.height)
        header.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        var size = 0
        guard png_image_write_to_memory(&header, nil, &size, 0, &bytes, 0, nil) != 0 else {
            throw ImageError.writeFailed(path: path, reason: pngMessage(&header))
        }
        var encoded = [UInt8](repeating: 0, count: size)
        guard png_image_write_to_memory(&header, &encoded, &size, 0, &bytes, 0, nil) != 0 else {
            throw ImageError.writeFailed(path: path, reason: pngMessage(&header))
        }
        try writeFile(Data(encoded.prefix(size)), to: path)
    }

    /// Writes binary PGM (P5) for a grey image or PPM (P6) for an RGB one, maxval 255, clamped and rounded.
    public static func writePGM(_ image: Image, to path: String) throws {
        let header = "\(image.channels == 3 ? "P6" : "P5")\n\(image.width) \(image.height)\n255\n"
        try writeFile(Data(header.utf8) + Data(quantize(image)), to: path)
    }

    // MARK: - PNG

    private static func decodePNG(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
        // libpng allocates and zeroes a buffer of a chunk's declared length before reading the chunk, so a
        // 119-byte file declaring a 1.6 GB text chunk would cost 1.6 GB (found by fuzzing; see
        // Tests/Fuzz/regressions/image): a chunk running past the end of the data is refused first.
        var chunk = 8
        while chunk + 8 <= data.count {
            let length = Int(data[chunk]) << 24 | Int(data[chunk + 1]) << 16 | Int(data[chunk + 2]) << 8
                | Int(data[chunk + 3])
            guard length <= data.count - chunk - 12 else { throw ImageError.truncated(path: source, format: "PNG") }
            if data[(chunk + 4)..<(chunk + 8)].elementsEqual("IEND".utf8) { break }
            chunk += 12 + length
        }
        var header = png_image()
        header.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&header) }
        guard png_image_begin_read_from_memory(&header, data, data.count) != 0 else { throw pngError(&header, source) }
        let width = Int(header.width), height = Int(header.height)
        guard limits.allows(width: width, height: height) else {
            throw ImageError.tooLarge(path: source, width: width, height: height, limits: limits)
        }
        let channels = header.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1
        // Asking for 8-bit grey or RGB makes libpng expand palettes, scale 16-bit samples to 8 bits (read as
        // sRGB-encoded, like other loaders, not as linear light) and composite any alpha channel onto the
        // zeroed buffer, i.e. onto black (libpng blends in linear light).
        header.format = channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        header.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        var bytes = [UInt8](repeating: 0, count: width * height * channels)
        guard png_image_finish_read(&header, nil, &bytes, 0, nil) != 0 else { throw pngError(&header, source) }
        return Image(width: width, height: height, channels: channels, pixels: bytes.map(Float.init))
    }

    private static func pngMessage(_ header: inout png_image) -> String {
        withUnsafeBytes(of: &header.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func pngError(_ header: inout png_image, _ source: String) -> ImageError {
        let message = pngMessage(&header)
        if message.contains("end of data") { return .truncated(path: source, format: "PNG") }
        return .corrupt(path: source, format: "PNG", detail: message)
    }

    // MARK: - JPEG

    private static func decodeJPEG(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
        var out: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = lv_jpeg_decode(data, data.count, limits.maxWidth, limits.maxHeight, Int64(limits.maxPixels),
                                  &out, &width, &height, &channels, &message, message.count)
        defer { lv_jpeg_free(out) }
        switch Int(code) {
        case LV_JPEG_OK:
            let count = Int(width) * Int(height) * Int(channels)
            guard let out, channels == 1 || channels == 3 else {
                throw ImageError.unsupported(path: source, detail: "JPEG with \(channels) channels")
            }
            let pixels = UnsafeBufferPointer(start: out, count: count).map(Float.init)
            return Image(width: Int(width), height: Int(height), channels: Int(channels), pixels: pixels)
        case LV_JPEG_TOO_LARGE:
            throw ImageError.tooLarge(path: source, width: Int(width), height: Int(height), limits: limits)
        case LV_JPEG_TRUNCATED:
            throw ImageError.truncated(path: source, format: "JPEG")
        default:
            let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageError.corrupt(path: source, format: "JPEG", detail: detail)
        }
    }

    // MARK: - PGM / PPM

    /// Binary PGM (P5) or PPM (P6): magic, width, height and maxval as ASCII decimals separated by whitespace
    /// (with `#` comments to the end of a line), one whitespace byte, then samples of 1 byte (maxval <= 255)
    /// or 2 big-endian bytes (maxval <= 65535), rescaled to [0, 255].
    private static func decodePNM(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
        let variant = Character(UnicodeScalar(data[1]))
        guard variant == "5" || variant == "6" else {
            throw ImageError.unsupported(path: source,
                                         detail: "PNM variant P\(variant) (only binary P5 and P6 are read)")
        }
        let format = variant == "5" ? "PGM" : "PPM"
        let channels = variant == "5" ? 1 : 3
        var position = 2
        func number(_ what: String) throws -> Int {
            while position < data.count {
                if data[position] == UInt8(ascii: "#") {
                    while position < data.count && data[position] != UInt8(ascii: "\n") { position += 1 }
                } else if isSpace(data[position]) {
                    position += 1
                } else {
                    break
                }
            }
            guard position < data.count else { throw ImageError.truncated(path: source, format: format) }
            var value = 0, digits = 0
            while position < data.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(data[position]) {
                value = value * 10 + Int(data[position] - UInt8(ascii: "0"))
                position += 1
                digits += 1
                guard digits <= 9 else {
                    throw ImageError.corrupt(path: source, format: format, detail: "\(what) is too long")
                }
            }
            guard digits > 0 else {
                throw ImageError.corrupt(path: source, format: format, detail: "\(what) is not a number")
            }
            return value
        }
        let width = try number("width"), height = try number("height"), maxval = try number("maxval")
        guard width > 0 && height > 0 else {
            throw ImageError.corrupt(path: source, format: format, detail: "size \(width)x\(height)")
        }
        guard limits.allows(width: width, height: height) else {
            throw ImageError.tooLarge(path: source, width: width, height: height, limits: limits)
        }
        guard (1...65535).contains(maxval) else {
            throw ImageError.unsupported(path: source, detail: "\(format) maxval \(maxval)")
        }
        guard position < data.count, isSpace(data[position]) else {
            throw ImageError.truncated(path: source, format: format)
        }
        position += 1
        let bytesPerSample = maxval > 255 ? 2 : 1
        let count = width * height * channels
        guard data.count - position >= count * bytesPerSample else {
            throw ImageError.truncated(path: source, format: format)
        }
        let scale = 255 / Float(maxval)
        var pixels = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let sample = bytesPerSample == 1
                ? Int(data[position + i])
                : Int(data[position + 2 * i]) << 8 | Int(data[position + 2 * i + 1])
            guard sample <= maxval else {
                throw ImageError.corrupt(path: source, format: format,
                                         detail: "sample \(sample) exceeds maxval \(maxval)")
            }
            pixels[i] = maxval == 255 ? Float(sample) : Float(sample) * scale
        }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }

    // MARK: - Files

    private static func quantize(_ image: Image) -> [UInt8] {
        image.pixels.map { $0.isNaN ? 0 : UInt8(min(max($0, 0), 255).rounded()) }
    }

    private static func writeFile(_ data: Data, to path: String) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            // Foundation's own message is vague ("The file doesn't exist."); the POSIX cause beneath it is not.
            var reason = error.localizedDescription
            if let cause = (error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error,
               (cause as NSError).domain == NSPOSIXErrorDomain {
                reason = String(cString: strerror(Int32((cause as NSError).code)))
            }
            throw ImageError.writeFailed(path: path, reason: reason)
        }
    }
}
