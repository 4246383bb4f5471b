import CWebP

/// WebP reading through libwebp (lossy and lossless, still images): RGB, with any alpha composited onto black
/// as for PNG. The size is checked against the limits before any pixel memory is allocated.
extension ImageCodecs {
    /// "RIFF", a 4-byte size, "WEBP".
    static func isWebP(_ data: [UInt8]) -> Bool {
        data.count >= 12 && data.starts(with: Array("RIFF".utf8)) && data[8..<12].elementsEqual("WEBP".utf8)
    }

    static func decodeWebP(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
        // An extended file (a "VP8X" chunk first) holds a 24-bit canvas size; libwebp calls canvases of 2^32
        // pixels or more a bitstream error, so that size is read here first to report an oversized image as one.
        if data.count >= 30, data[12..<16].elementsEqual("VP8X".utf8) {
            let width = 1 + (Int(data[24]) | Int(data[25]) << 8 | Int(data[26]) << 16)
            let height = 1 + (Int(data[27]) | Int(data[28]) << 8 | Int(data[29]) << 16)
            guard limits.allows(width: width, height: height) else {
                throw ImageError.tooLarge(path: source, width: width, height: height, limits: limits)
            }
        }
        var features = WebPBitstreamFeatures()
        let status = WebPGetFeatures(data, data.count, &features)
        guard status == VP8_STATUS_OK else { throw webpError(status, source) }
        let width = Int(features.width), height = Int(features.height)
        guard limits.allows(width: width, height: height) else {
            throw ImageError.tooLarge(path: source, width: width, height: height, limits: limits)
        }
        guard features.has_animation == 0 else {
            throw ImageError.unsupported(path: source, detail: "animated WebP (only still images are read)")
        }
        let alpha = features.has_alpha != 0
        let stored = alpha ? 4 : 3
        var bytes = [UInt8](repeating: 0, count: width * height * stored)
        var config = WebPDecoderConfig()
        guard WebPInitDecoderConfig(&config) != 0 else {
            throw ImageError.unsupported(path: source, detail: "WebP: libwebp version mismatch")
        }
        let decoded = bytes.withUnsafeMutableBufferPointer { buffer -> VP8StatusCode in
            // Decoded straight into `buffer` (external memory): non-premultiplied RGBA, or RGB.
            config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB
            config.output.is_external_memory = 1
            config.output.u.RGBA.rgba = buffer.baseAddress
            config.output.u.RGBA.stride = Int32(width * stored)
            config.output.u.RGBA.size = buffer.count
            defer { WebPFreeDecBuffer(&config.output) }
            return WebPDecode(data, data.count, &config)
        }
        guard decoded == VP8_STATUS_OK else { throw webpError(decoded, source) }
        return Image(width: width, height: height, channels: 3,
                     pixels: compositedOnBlack(bytes, colours: 3, alpha: alpha))
    }

    private static func webpError(_ status: VP8StatusCode, _ source: String) -> ImageError {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA: return .truncated(path: source, format: "WebP")
        case VP8_STATUS_UNSUPPORTED_FEATURE: return .unsupported(path: source, detail: "WebP feature")
        case VP8_STATUS_OUT_OF_MEMORY: return .corrupt(path: source, format: "WebP", detail: "out of memory")
        case VP8_STATUS_INVALID_PARAM: return .corrupt(path: source, format: "WebP", detail: "invalid header")
        default: return .corrupt(path: source, format: "WebP", detail: "bitstream error")
        }
    }
}
