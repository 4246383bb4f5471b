import CPNG
import Foundation

/// PNG reading and writing through libpng's simplified API.
extension ImageCodecs {
    /// Writes an 8-bit grey or RGB PNG; samples are clamped to [0, 255] and rounded (NaN becomes 0).
    public static func writePNG(_ image: Image, to path: String) throws {
        var bytes = quantize(image)
        var header = png_image()
        header.version = UInt32(PNG_IMAGE_VERSION)
        header.width = UInt32(image.width)
        header.height = UInt32(image.height)
        header.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        // Fast zlib settings (about 4× faster, files about 20% larger): generated datasets write thousands of PNGs.
        header.flags |= UInt32(PNG_IMAGE_FLAG_FAST)
        // Compressed once, into a buffer big enough for incompressible rows; libpng asks for more when it is not.
        var size = bytes.count + image.height + bytes.count / 100 + 4096
        var encoded = [UInt8](repeating: 0, count: size)
        if png_image_write_to_memory(&header, &encoded, &size, 0, &bytes, 0, nil) == 0 {
            guard size > encoded.count else { throw ImageError.writeFailed(path: path, reason: pngMessage(&header)) }
            encoded = [UInt8](repeating: 0, count: size)
            guard png_image_write_to_memory(&header, &encoded, &size, 0, &bytes, 0, nil) != 0 else {
                throw ImageError.writeFailed(path: path, reason: pngMessage(&header))
            }
        }
        try writeFile(Data(encoded.prefix(size)), to: path)
    }

    static func decodePNG(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
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
        let alpha = header.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0  // an alpha channel or a tRNS chunk
        // Asking for 8-bit grey or RGB (with alpha when the file has it) makes libpng expand palettes and tRNS
        // and scale 16-bit samples to 8 bits, rounding (read as sRGB-encoded, like other loaders, not as linear
        // light). Alpha is then composited onto black here, in sRGB values as Pillow does, not by libpng (which
        // would blend in linear light).
        header.format = (channels == 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0)
            | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
        header.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        var bytes = [UInt8](repeating: 0, count: width * height * (channels + (alpha ? 1 : 0)))
        guard png_image_finish_read(&header, nil, &bytes, 0, nil) != 0 else { throw pngError(&header, source) }
        return Image(width: width, height: height, channels: channels,
                     pixels: compositedOnBlack(bytes, colours: channels, alpha: alpha))
    }

    private static func pngMessage(_ header: inout png_image) -> String {
        withUnsafeBytes(of: &header.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func pngError(_ header: inout png_image, _ source: String) -> ImageError {
        let message = pngMessage(&header)
        if message.contains("end of data") { return .truncated(path: source, format: "PNG") }
        return .corrupt(path: source, format: "PNG", detail: message)
    }
}
