/// The EXIF orientation of a JPEG: IFD0's Orientation tag (0x0112) in the first APP1 "Exif" segment, read by
/// hand (a few bounds-checked reads of a TIFF header, so no libexif dependency for one number).
/// Damaged or missing EXIF data, or a value outside 1...8, reads as 1 (as stored): the pixels are still good,
/// and Pillow's `ImageOps.exif_transpose` leaves such an image as it is too.
enum EXIF {
    static let orientationTag = 0x0112

    /// The orientation (1...8) that `data`'s EXIF segment gives, or 1.
    static func orientation(inJPEG data: [UInt8]) -> Int {
        guard data.starts(with: [0xFF, 0xD8]) else { return 1 }
        var p = 2
        // Marker segments up to the first scan: FF, marker, 2-byte big-endian length counting itself.
        while p + 4 <= data.count, data[p] == 0xFF {
            let marker = data[p + 1]
            if marker == 0xFF { p += 1; continue }           // fill byte before a marker
            if marker == 0xDA || marker == 0xD9 { return 1 } // start of scan, end of image: no EXIF
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { p += 2; continue } // markers with no length
            let length = Int(data[p + 2]) << 8 | Int(data[p + 3])
            guard length >= 2, p + 2 + length <= data.count else { return 1 }
            let body = data[(p + 4)..<(p + 2 + length)]
            if marker == 0xE1, body.starts(with: Array("Exif\0\0".utf8)) {
                return orientation(inTIFF: Array(body.dropFirst(6)))
            }
            p += 2 + length
        }
        return 1
    }

    /// The Orientation entry of IFD0 in a TIFF structure ("II*\0" or "MM\0*", then IFD0's offset), or 1.
    static func orientation(inTIFF t: [UInt8]) -> Int {
        guard t.count >= 8 else { return 1 }
        let little: Bool
        if t.starts(with: [0x49, 0x49, 0x2A, 0x00]) { little = true }
        else if t.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { little = false }
        else { return 1 }
        func u16(_ at: Int) -> Int { little ? Int(t[at]) | Int(t[at + 1]) << 8 : Int(t[at]) << 8 | Int(t[at + 1]) }
        func u32(_ at: Int) -> Int { little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2) }
        let ifd = u32(4)
        guard ifd >= 8, ifd <= t.count - 2 else { return 1 }
        let entries = u16(ifd)
        for i in 0..<entries {
            let e = ifd + 2 + 12 * i
            guard e + 12 <= t.count else { return 1 }
            guard u16(e) == orientationTag else { continue }
            let type = u16(e + 2), count = u32(e + 4)
            // SHORT (3) as the standard says, or LONG (4), with one value held in the entry itself.
            guard count == 1, type == 3 || type == 4 else { return 1 }
            let value = type == 3 ? u16(e + 8) : u32(e + 8)
            return (1...8).contains(value) ? value : 1
        }
        return 1
    }
}

extension Image {
    /// The image as shown for EXIF `orientation` (1...8; others leave it as it is): the flip or rotation that
    /// Pillow's `ImageOps.exif_transpose` applies (2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90°
    /// clockwise, 7 transverse, 8 rotate 90° anticlockwise).
    func undoingEXIFOrientation(_ orientation: Int) -> Image {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let swaps = orientation >= 5
        let outWidth = swaps ? h : w, outHeight = swaps ? w : h
        var out = [Float](repeating: 0, count: pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                case 4: (sx, sy) = (x, h - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, h - 1 - x)
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                default: (sx, sy) = (w - 1 - y, x)
                }
                let from = (sy * w + sx) * channels, to = (y * outWidth + x) * channels
                for c in 0..<channels { out[to + c] = pixels[from + c] }
            }
        }
        return Image(width: outWidth, height: outHeight, channels: channels, pixels: out)
    }
}
