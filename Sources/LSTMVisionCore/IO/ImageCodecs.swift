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
        case let .unknownFormat(path): return "\(path): not a PNG, JPEG, WebP, PGM or PPM file"
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

/// Reads PNG, JPEG, WebP and binary PGM/PPM files into `Image` (values in [0, 255]) and writes PNG and PGM/PPM.
/// The format is chosen from the file's magic bytes, never its extension (docs/limits.md, "Image formats").
/// The decoders are in PNG.swift, JPEG.swift (with EXIF.swift) and WebP.swift; PGM/PPM is read here.
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
        if isWebP(data) { return try decodeWebP(data, source: source, limits: limits) }
        if data.count >= 2 && data[0] == UInt8(ascii: "P")
            && (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(data[1]) {
            return try decodePNM(data, source: source, limits: limits)
        }
        throw ImageError.unknownFormat(path: source)
    }

    /// Writes binary PGM (P5) for a grey image or PPM (P6) for an RGB one, maxval 255, clamped and rounded.
    public static func writePGM(_ image: Image, to path: String) throws {
        let header = "\(image.channels == 3 ? "P6" : "P5")\n\(image.width) \(image.height)\n255\n"
        try writeFile(Data(header.utf8) + Data(quantize(image)), to: path)
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

    // MARK: - Alpha

    /// Interleaved 8-bit samples with alpha last (`colours` + 1 a pixel) composited onto opaque black in sRGB
    /// values, as Pillow's `Image.alpha_composite` onto black does: c·a/255, rounded (equal to Pillow's integer
    /// arithmetic for every c and a). Without `alpha`, the samples as they are.
    static func compositedOnBlack(_ samples: [UInt8], colours: Int, alpha: Bool) -> [Float] {
        guard alpha else { return samples.map(Float.init) }
        let pixels = samples.count / (colours + 1)
        var out = [Float](repeating: 0, count: pixels * colours)
        for i in 0..<pixels {
            let a = Int(samples[i * (colours + 1) + colours])
            for c in 0..<colours {
                out[i * colours + c] = Float((Int(samples[i * (colours + 1) + c]) * a + 127) / 255)
            }
        }
        return out
    }

    // MARK: - Files

    static func quantize(_ image: Image) -> [UInt8] {
        image.pixels.map { $0.isNaN ? 0 : UInt8(min(max($0, 0), 255).rounded()) }
    }

    static func writeFile(_ data: Data, to path: String) throws {
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
