import Foundation

/// Random changes to detection training images (pixels in [0, 1]) and their boxes, drawn for each image of a batch
/// from a generator that the caller seeds from the run's seed and the step, so that a resumed run draws the same.
/// All are off by default (the zero value changes nothing):
/// - scale and crop: the image is scaled by a factor drawn from [1 − scale, 1 + scale] (bilinear, PyTorch's
///   align_corners=False sampling, 0 outside the image), then a window of the input's size is taken at a random
///   offset (a crop when the scaled image is larger, a zero-padded placement when smaller). Boxes are scaled, moved,
///   clipped to the window, and dropped when less than `minVisible` (default 40%) of their area is left in it.
/// - horizontal flip with probability ½ (off by default: it mirrors digits into other shapes).
/// - colour jitter: brightness (an offset in [−brightness, brightness]), contrast (a factor in [1 ± contrast] about
///   the image's mean), saturation (RGB only: a factor in [1 ± saturation] away from the pixel's grey); results are
///   clamped to [0, 1].
public struct DetectionAugmentation: Codable, Sendable, Equatable, CustomStringConvertible {
    public var scale: Double = 0
    public var flip = false
    public var brightness: Double = 0
    public var contrast: Double = 0
    public var saturation: Double = 0
    /// The fraction of a box's area that must stay inside the window for the box to be kept.
    public var minVisible: Double = 0.4

    public init(scale: Double = 0, flip: Bool = false, brightness: Double = 0, contrast: Double = 0,
                saturation: Double = 0, minVisible: Double = 0.4) {
        self.scale = scale
        self.flip = flip
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.minVisible = minVisible
    }

    /// The state file's metadata key.
    public static let key = "detection_augmentation"

    /// True when some change is on.
    public var isEnabled: Bool { scale > 0 || flip || brightness > 0 || contrast > 0 || saturation > 0 }

    public var description: String {
        guard isEnabled else { return "none" }
        var parts: [String] = []
        if scale > 0 { parts.append(String(format: "scale ±%g", scale)) }
        if flip { parts.append("flip") }
        if brightness > 0 || contrast > 0 || saturation > 0 {
            parts.append(String(format: "jitter %g,%g,%g", brightness, contrast, saturation))
        }
        return parts.joined(separator: ", ")
    }

    /// Checks the ranges; the message names the setting.
    public func validate() throws {
        for (name, value, range) in [("scale", scale, 0.0...0.9), ("brightness", brightness, 0.0...1.0),
                                     ("contrast", contrast, 0.0...1.0), ("saturation", saturation, 0.0...1.0),
                                     ("minVisible", minVisible, 0.0...1.0)] {
            guard value.isFinite, range.contains(value) else {
                throw DataError.invalid("augmentation \(name) must be in \(range.lowerBound)...\(range.upperBound),"
                                        + " got \(value)")
            }
        }
    }

    /// The images of a batch [n, height, width·channels] and their targets, each changed by its own draw.
    public func apply(_ x: Tensor, targets: [DetectionTarget], width: Int, height: Int, channels: Int,
                      generator g: inout SeededGenerator) -> (images: Tensor, targets: [DetectionTarget]) {
        guard isEnabled else { return (x, targets) }
        let size = width * height * channels
        var out = x, changed = targets
        for i in targets.indices {
            let image = Image(width: width, height: height, channels: channels,
                              pixels: Array(x.scalars[(i * size)..<((i + 1) * size)]))
            let (a, t) = apply(image, targets[i], generator: &g)
            out.scalars.replaceSubrange((i * size)..<((i + 1) * size), with: a.pixels)
            changed[i] = t
        }
        return (out, changed)
    }

    /// One image and its boxes changed by one draw (the draws come in a fixed order, whatever is on).
    public func apply(_ image: Image, _ target: DetectionTarget,
                      generator g: inout SeededGenerator) -> (Image, DetectionTarget) {
        let factor = 1 + Double(g.uniform(Float(-scale), Float(scale)))
        let u = Double(g.uniform()), v = Double(g.uniform())
        let mirror = g.uniform() < 0.5
        let jitter = (Double(g.uniform(Float(-brightness), Float(brightness))),
                      1 + Double(g.uniform(Float(-contrast), Float(contrast))),
                      1 + Double(g.uniform(Float(-saturation), Float(saturation))))
        var (out, t) = (image, target)
        if scale > 0 {
            // The offset of the window in the scaled image: anywhere from 0 to the overhang, or below 0 when smaller.
            let spareX = Double(image.width) * (factor - 1), spareY = Double(image.height) * (factor - 1)
            (out, t) = Self.scaleAndCrop(out, t, factor: factor, offsetX: min(0, spareX) + u * abs(spareX),
                                         offsetY: min(0, spareY) + v * abs(spareY), minVisible: minVisible)
        }
        if flip && mirror { (out, t) = Self.flipped(out, t) }
        if brightness > 0 || contrast > 0 || saturation > 0 {
            out = Self.jittered(out, brightness: jitter.0, contrast: jitter.1, saturation: jitter.2)
        }
        return (out, t)
    }

    /// `image` scaled by `factor` and cut to its own size with the window's top-left corner at (`offsetX`, `offsetY`)
    /// in the scaled image; boxes moved with it, clipped, and dropped below `minVisible` of their area.
    public static func scaleAndCrop(_ image: Image, _ target: DetectionTarget, factor: Double, offsetX: Double,
                                    offsetY: Double, minVisible: Double) -> (Image, DetectionTarget) {
        let w = image.width, h = image.height, c = image.channels
        var out = [Float](repeating: 0, count: image.pixels.count)
        for y in 0..<h {
            let sy = (Double(y) + offsetY + 0.5) / factor - 0.5
            for x in 0..<w {
                let sx = (Double(x) + offsetX + 0.5) / factor - 0.5
                let x0f = sx.rounded(.down), y0f = sy.rounded(.down)
                let fx = Float(sx - x0f), fy = Float(sy - y0f), x0 = Int(x0f), y0 = Int(y0f)
                let o = (y * w + x) * c
                for (dy, wy) in [(0, 1 - fy), (1, fy)] where (0..<h).contains(y0 + dy) && wy > 0 {
                    for (dx, wx) in [(0, 1 - fx), (1, fx)] where (0..<w).contains(x0 + dx) && wx > 0 {
                        let i = ((y0 + dy) * w + x0 + dx) * c
                        for ch in 0..<c { out[o + ch] += wy * wx * image.pixels[i + ch] }
                    }
                }
            }
        }
        var boxes: [Box] = [], classes: [Int] = []
        for (b, k) in zip(target.boxes, target.classes) {
            let moved = Box(x: b.x * factor - offsetX, y: b.y * factor - offsetY, width: b.width * factor,
                            height: b.height * factor)
            let kept = moved.clipped(width: Double(w), height: Double(h))
            let visible = moved.area > 0 ? kept.area / moved.area
                : (moved.x >= 0 && moved.y >= 0 && moved.maxX <= Double(w) && moved.maxY <= Double(h) ? 1 : 0)
            guard visible >= minVisible, visible > 0 else { continue }
            boxes.append(kept)
            classes.append(k)
        }
        return (Image(width: w, height: h, channels: c, pixels: out), DetectionTarget(boxes: boxes, classes: classes))
    }

    /// The image mirrored left to right, and its boxes: x becomes width − x − box width.
    public static func flipped(_ image: Image, _ target: DetectionTarget) -> (Image, DetectionTarget) {
        let w = image.width, c = image.channels
        var out = image.pixels
        for y in 0..<image.height {
            for x in 0..<w {
                for ch in 0..<c { out[(y * w + x) * c + ch] = image.pixels[(y * w + w - 1 - x) * c + ch] }
            }
        }
        let boxes = target.boxes.map {
            Box(x: Double(w) - $0.x - $0.width, y: $0.y, width: $0.width, height: $0.height)
        }
        return (Image(width: w, height: image.height, channels: c, pixels: out),
                DetectionTarget(boxes: boxes, classes: target.classes))
    }

    /// Brightness offset, contrast factor about the mean, saturation factor (RGB), clamped to [0, 1].
    public static func jittered(_ image: Image, brightness: Double, contrast: Double, saturation: Double) -> Image {
        var p = image.pixels.map { $0 + Float(brightness) }
        let mean = p.isEmpty ? 0 : p.reduce(0, +) / Float(p.count)
        p = p.map { (($0 - mean) * Float(contrast) + mean) }
        if image.channels == 3 {
            for i in stride(from: 0, to: p.count, by: 3) {
                let grey = 0.299 * p[i] + 0.587 * p[i + 1] + 0.114 * p[i + 2]
                for ch in 0..<3 { p[i + ch] = grey + (p[i + ch] - grey) * Float(saturation) }
            }
        }
        return Image(width: image.width, height: image.height, channels: image.channels,
                     pixels: p.map { min(max($0, 0), 1) })
    }
}
