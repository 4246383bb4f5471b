import Foundation

/// How an image of any size is fitted to a detector's input of `width`×`height` (Ultralytics' `LetterBox`): scaled
/// by one factor r = min(width / sourceWidth, height / sourceHeight), keeping its aspect, to `scaledWidth`×
/// `scaledHeight` (each rounded to the nearest pixel, at least 1), then centred, the rest padded with `padValue`
/// (an odd margin leaves the extra pixel on the right or bottom). Boxes map forward (source pixels → input) and back
/// (input → source pixels, clipped to the source image). An image of the input's own size is left as it is.
public struct Letterbox: Sendable, Equatable, Codable {
    public let sourceWidth: Int, sourceHeight: Int
    public let width: Int, height: Int
    public let scaledWidth: Int, scaledHeight: Int
    /// The padding left of and above the scaled image.
    public let left: Int, top: Int

    /// The padding's value: 0 (black), not Ultralytics' grey 114/255, because the synthetic canvases' background is
    /// 0 and the encoder's convolutions pad with zeros too, so the margin looks like background and like the border.
    public static let padValue: Float = 0

    /// The letterbox of a `sourceWidth`×`sourceHeight` image into a `width`×`height` input (all positive).
    public init(sourceWidth: Int, sourceHeight: Int, width: Int, height: Int) {
        precondition(sourceWidth > 0 && sourceHeight > 0 && width > 0 && height > 0,
                     "Letterbox: sizes must be positive, got \(sourceWidth)×\(sourceHeight) → \(width)×\(height)")
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.width = width
        self.height = height
        let r = min(Double(width) / Double(sourceWidth), Double(height) / Double(sourceHeight))
        scaledWidth = min(width, max(1, Int((Double(sourceWidth) * r).rounded())))
        scaledHeight = min(height, max(1, Int((Double(sourceHeight) * r).rounded())))
        left = (width - scaledWidth) / 2
        top = (height - scaledHeight) / 2
    }

    /// The identity letterbox of a `width`×`height` image.
    public static func identity(width: Int, height: Int) -> Letterbox {
        Letterbox(sourceWidth: width, sourceHeight: height, width: width, height: height)
    }

    /// True when the source already has the input's size: nothing is resampled, padded or moved.
    public var isIdentity: Bool { sourceWidth == width && sourceHeight == height }

    /// The horizontal and vertical scale factors the pixels undergo (equal up to the rounding of the scaled size).
    public var scaleX: Double { Double(scaledWidth) / Double(sourceWidth) }
    public var scaleY: Double { Double(scaledHeight) / Double(sourceHeight) }

    /// `image` (of the source size, any channels) resized (`Image.resizedAntialiased`) and padded to the input.
    public func apply(_ image: Image) -> Image {
        precondition(image.width == sourceWidth && image.height == sourceHeight,
                     "Letterbox: a \(image.width)×\(image.height) image for a \(sourceWidth)×\(sourceHeight)"
                     + " letterbox")
        if isIdentity { return image }
        let scaled = image.resizedAntialiased(width: scaledWidth, height: scaledHeight)
        let c = image.channels
        var out = [Float](repeating: Self.padValue, count: width * height * c)
        for y in 0..<scaledHeight {
            let to = ((y + top) * width + left) * c, from = y * scaledWidth * c
            out.replaceSubrange(to..<(to + scaledWidth * c), with: scaled.pixels[from..<(from + scaledWidth * c)])
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }

    /// A box in source pixels, in input pixels.
    public func forward(_ b: Box) -> Box {
        if isIdentity { return b }
        return Box(x: b.x * scaleX + Double(left), y: b.y * scaleY + Double(top),
                   width: b.width * scaleX, height: b.height * scaleY)
    }

    /// A box in input pixels, in source pixels, clipped to the source image.
    public func back(_ b: Box) -> Box {
        if isIdentity { return b }
        return Box(x: (b.x - Double(left)) / scaleX, y: (b.y - Double(top)) / scaleY,
                   width: b.width / scaleX, height: b.height / scaleY)
            .clipped(width: Double(sourceWidth), height: Double(sourceHeight))
    }
}

extension Image {
    /// Bilinear resize as PyTorch's `F.interpolate(mode="bilinear", align_corners=False, antialias=True)` (and
    /// Pillow's BILINEAR): when shrinking, the triangle filter is widened by the scale factor so that every source
    /// pixel counts (no aliasing); when enlarging it is plain bilinear interpolation. Separable, rows first.
    public func resizedAntialiased(width w: Int, height h: Int) -> Image {
        precondition(w > 0 && h > 0 && width > 0 && height > 0,
                     "resizedAntialiased: cannot resize \(width)x\(height) to \(w)x\(h)")
        if w == width && h == height { return self }
        let c = channels
        let xs = Self.antialiasTaps(w, width), ys = Self.antialiasTaps(h, height)
        // Horizontal pass: height × w × c.
        var mid = [Float](repeating: 0, count: height * w * c)
        for y in 0..<height {
            for (ox, tap) in xs.enumerated() {
                for ch in 0..<c {
                    var sum: Float = 0
                    for (k, weight) in tap.weights.enumerated() {
                        sum += weight * pixels[(y * width + tap.first + k) * c + ch]
                    }
                    mid[(y * w + ox) * c + ch] = sum
                }
            }
        }
        var out = [Float](repeating: 0, count: h * w * c)
        for (oy, tap) in ys.enumerated() {
            for i in 0..<(w * c) {
                var sum: Float = 0
                for (k, weight) in tap.weights.enumerated() { sum += weight * mid[(tap.first + k) * w * c + i] }
                out[oy * w * c + i] = sum
            }
        }
        return Image(width: w, height: h, channels: c, pixels: out)
    }

    /// For each of `outSize` output positions, the first source index and the normalised weights of the triangle
    /// filter (support 1, widened by the scale when shrinking) centred at `scale · (i + 0.5)` — PyTorch's rule.
    static func antialiasTaps(_ outSize: Int, _ inSize: Int) -> [(first: Int, weights: [Float])] {
        let scale = Double(inSize) / Double(outSize)
        let support = scale >= 1 ? scale : 1, invScale = scale >= 1 ? 1 / scale : 1
        return (0..<outSize).map { i in
            let centre = scale * (Double(i) + 0.5)
            let lo = max(Int(centre - support + 0.5), 0), hi = min(Int(centre + support + 0.5), inSize)
            var weights = (lo..<hi).map { j in max(0, 1 - abs((Double(j) - centre + 0.5) * invScale)) }
            let total = weights.reduce(0, +)
            if total > 0 { weights = weights.map { $0 / total } }
            return (lo, weights.map { Float($0) })
        }
    }
}
