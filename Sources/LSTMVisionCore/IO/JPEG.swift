import CImageShim
import Foundation

/// JPEG reading through the libjpeg shim (Sources/CImageShim): grey, YCbCr/RGB, and CMYK/YCCK converted to RGB
/// as Pillow does; the EXIF orientation (EXIF.swift) is then undone, as Pillow's `ImageOps.exif_transpose` does.
extension ImageCodecs {
    static func decodeJPEG(_ data: [UInt8], source: String, limits: InputLimits) throws -> Image {
        // Orientations 5-8 swap width and height: the limits apply to the image as shown, so the shim checks the
        // stored size against the swapped limits (and a refusal names the size as shown).
        let orientation = EXIF.orientation(inJPEG: data)
        let swaps = orientation >= 5
        var out: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = lv_jpeg_decode(data, data.count, swaps ? limits.maxHeight : limits.maxWidth,
                                  swaps ? limits.maxWidth : limits.maxHeight, Int64(limits.maxPixels),
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
                .undoingEXIFOrientation(orientation)
        case LV_JPEG_TOO_LARGE:
            throw ImageError.tooLarge(path: source, width: Int(swaps ? height : width),
                                      height: Int(swaps ? width : height), limits: limits)
        case LV_JPEG_TRUNCATED:
            throw ImageError.truncated(path: source, format: "JPEG")
        default:
            let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageError.corrupt(path: source, format: "JPEG", detail: detail)
        }
    }
}
