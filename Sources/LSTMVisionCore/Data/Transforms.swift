import Foundation

/// Why a transform spec could not be parsed or a transform cannot apply to an image; the message says which.
public enum ImageTransformError: Error, CustomStringConvertible, Equatable, InputLimitError {
    case invalidSpec(String)
    case inapplicable(String)
    /// A spec whose size passes the image limits `limits` (named in the message).
    case tooLarge(String, limits: [InputLimits.Setting])

    public var description: String {
        switch self {
        case let .invalidSpec(m), let .inapplicable(m), let .tooLarge(m, _): return m
        }
    }

    public var exceededLimits: [InputLimits.Setting] {
        if case let .tooLarge(_, limits) = self { return limits }
        return []
    }
}

/// One preprocessing step on an `Image`. Deterministic steps map an image to one result;
/// random ones (`randomCrop`, `randomShift`, `randomRotation`) draw from the generator passed to `apply`,
/// so a seeded run repeats exactly.
public enum ImageTransform: Sendable, Equatable, CustomStringConvertible {
    /// Divide every sample by 255, taking loaded [0, 255] values to [0, 1].
    case scale
    /// `(x - mean[c]) / std[c]` per channel; one value applies to every channel.
    case normalize(mean: [Float], std: [Float])
    /// RGB to one-channel ITU-R BT.601 luma; grey images pass unchanged.
    case grey
    /// RGB to HSV (see `Image.rgbToHSV`) and back.
    case rgbToHSV
    case hsvToRGB
    /// RGB in [0, 255] to full-range JPEG YCbCr (see `Image.rgbToYCbCr`) and back.
    case rgbToYCbCr
    case yCbCrToRGB
    /// The central region of the given size.
    case centreCrop(width: Int, height: Int)
    /// A region of the given size at a uniform random position.
    case randomCrop(width: Int, height: Int)
    /// Bilinear resize with PyTorch `align_corners=False` sampling.
    case resize(width: Int, height: Int)
    /// Shift by a uniform whole number of pixels in [-k, k] on each axis, filling with 0.
    case randomShift(Int)
    /// Rotate by a uniform angle in [-degrees, degrees] about the centre (bilinear, fill 0).
    case randomRotation(degrees: Float)

    /// True for steps that draw from the generator.
    public var isRandom: Bool {
        switch self {
        case .randomCrop, .randomShift, .randomRotation: return true
        default: return false
        }
    }

    /// Applies the step; throws when it does not fit the image (wrong channel count, crop larger than the image).
    public func apply(_ image: Image, generator: inout SeededGenerator) throws -> Image {
        switch self {
        case .scale:
            return image.scaled(by: 1 / 255)
        case let .normalize(mean, std):
            guard mean.count == std.count && (mean.count == 1 || mean.count == image.channels) else {
                throw ImageTransformError.inapplicable(
                    "\(self): \(mean.count) means and \(std.count) stds for an image with \(image.channels) channels")
            }
            return image.normalized(mean: mean, std: std)
        case .grey:
            return image.greyscale()
        case .rgbToHSV, .hsvToRGB, .rgbToYCbCr, .yCbCrToRGB:
            guard image.channels == 3 else {
                throw ImageTransformError.inapplicable("\(self) needs a 3-channel image, got \(image.channels) channel")
            }
            switch self {
            case .rgbToHSV: return image.rgbToHSV()
            case .hsvToRGB: return image.hsvToRGB()
            case .rgbToYCbCr: return image.rgbToYCbCr()
            default: return image.yCbCrToRGB()
            }
        case let .centreCrop(w, h), let .randomCrop(w, h):
            guard w > 0 && h > 0 && w <= image.width && h <= image.height else {
                throw ImageTransformError.inapplicable("\(self): crop \(w)x\(h) is larger than the"
                                                       + " \(image.width)x\(image.height) image")
            }
            if case .centreCrop = self { return image.centreCropped(width: w, height: h) }
            let x = Int.random(in: 0...(image.width - w), using: &generator)
            let y = Int.random(in: 0...(image.height - h), using: &generator)
            return image.cropped(x: x, y: y, width: w, height: h)
        case let .resize(w, h):
            guard w > 0 && h > 0 && image.width > 0 && image.height > 0 else {
                throw ImageTransformError.inapplicable("\(self): cannot resize a \(image.width)x\(image.height) image")
            }
            return image.resized(width: w, height: h)
        case let .randomShift(k):
            guard k >= 0 else { throw ImageTransformError.inapplicable("\(self): the shift range must be >= 0") }
            let dx = Int.random(in: -k...k, using: &generator), dy = Int.random(in: -k...k, using: &generator)
            return image.shifted(dx: dx, dy: dy)
        case let .randomRotation(degrees):
            return image.rotated(degrees: generator.uniform(-degrees, degrees))
        }
    }

    /// The step in `parse` syntax, so that `parse(description)` gives the step back.
    public var description: String {
        func list(_ v: [Float]) -> String { v.map { "\($0)" }.joined(separator: ":") }
        switch self {
        case .scale: return "scale"
        case let .normalize(mean, std): return "normalize=\(list(mean))/\(list(std))"
        case .grey: return "grey"
        case .rgbToHSV: return "rgb2hsv"
        case .hsvToRGB: return "hsv2rgb"
        case .rgbToYCbCr: return "rgb2ycbcr"
        case .yCbCrToRGB: return "ycbcr2rgb"
        case let .centreCrop(w, h): return "crop=\(w)x\(h)"
        case let .randomCrop(w, h): return "randomcrop=\(w)x\(h)"
        case let .resize(w, h): return "resize=\(w)x\(h)"
        case let .randomShift(k): return "shift=\(k)"
        case let .randomRotation(d): return "rotate=\(d)"
        }
    }

    /// Parses a comma-separated list of steps, as given on the command line, for example
    /// `"grey,resize=28x28,scale,normalize=0.1307/0.3081,shift=2,rotate=10"`. Grammar (names are case-insensitive,
    /// spaces around items are ignored, an empty spec means no steps):
    ///
    ///     spec  := item ("," item)*
    ///     scale                      divide by 255
    ///     normalize=MEAN/STD         MEAN and STD are ":"-separated lists of equal length (one value, or one
    ///                                per channel), e.g. normalize=0.485:0.456:0.406/0.229:0.224:0.225; STD > 0
    ///     grey | gray                BT.601 luma
    ///     rgb2hsv | hsv2rgb | rgb2ycbcr | ycbcr2rgb
    ///     crop=WxH                   centre crop
    ///     randomcrop=WxH             crop at a uniform random position
    ///     resize=WxH                 bilinear resize
    ///     shift=K                    random shift of up to K pixels on each axis (K >= 0)
    ///     rotate=D                   random rotation of up to D degrees either way (D >= 0)
    /// Sizes and shifts are held to the image sizes of `limits`.
    public static func parse(_ spec: String, limits: InputLimits = .default) throws -> [ImageTransform] {
        let trimmed = spec.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [] }
        return try trimmed.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : nil
            return try parseItem(name: name, argument: argument, spec: spec, limits: limits)
        }
    }

    private static let names = "scale, normalize=MEAN/STD, grey, rgb2hsv, hsv2rgb, rgb2ycbcr, ycbcr2rgb, "
        + "crop=WxH, randomcrop=WxH, resize=WxH, shift=K, rotate=DEGREES"

    private static func parseItem(name: String, argument: String?, spec: String,
                                  limits: InputLimits) throws -> ImageTransform {
        func fail(_ message: String) -> ImageTransformError { .invalidSpec("transform spec \"\(spec)\": \(message)") }
        func required(_ form: String) throws -> String {
            guard let argument, !argument.isEmpty else { throw fail("\(name) needs an argument: \(form)") }
            return argument
        }
        func size() throws -> (Int, Int) {
            let text = try required("\(name)=WIDTHxHEIGHT")
            let dims = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard dims.count == 2, let w = Int(dims[0]), let h = Int(dims[1]), w > 0, h > 0 else {
                throw fail("\(name) expects WIDTHxHEIGHT with positive sizes, got '\(text)'")
            }
            // The images a pipeline makes are held to the limits of the images it may read.
            let passed = limits.exceeded(width: w, height: h)
            guard passed.isEmpty else {
                let (mw, mh, mp) = (limits.maxWidth, limits.maxHeight, limits.maxPixels)
                let message = "\(name) size \(w)x\(h) exceeds the image limits of \(mw)x\(mh) and \(mp) pixels"
                    + " (maxWidth, maxHeight, maxPixels)"
                throw ImageTransformError.tooLarge("transform spec \"\(spec)\": " + message, limits: passed)
            }
            return (w, h)
        }
        let simple: [String: ImageTransform] = [
            "scale": .scale, "grey": .grey, "gray": .grey, "rgb2hsv": .rgbToHSV, "hsv2rgb": .hsvToRGB,
            "rgb2ycbcr": .rgbToYCbCr, "ycbcr2rgb": .yCbCrToRGB,
        ]
        if let step = simple[name] {
            guard argument == nil else { throw fail("\(name) takes no argument, got '\(argument!)'") }
            return step
        }
        switch name {
        case "normalize":
            let text = try required("normalize=MEAN/STD")
            let halves = text.split(separator: "/", omittingEmptySubsequences: false)
            let fields = halves.map { $0.split(separator: ":", omittingEmptySubsequences: false) }
            let lists = fields.map { $0.compactMap { Float($0) }.filter(\.isFinite) }
            guard lists.count == 2, lists[0].count == fields[0].count, lists[1].count == fields[1].count,
                  lists[0].count == lists[1].count, lists[1].allSatisfy({ $0 > 0 }) else {
                throw fail("normalize expects MEAN/STD with equal-length ':'-separated lists and STD > 0,"
                           + " got '\(text)'")
            }
            return .normalize(mean: lists[0], std: lists[1])
        case "crop":
            let (w, h) = try size()
            return .centreCrop(width: w, height: h)
        case "randomcrop":
            let (w, h) = try size()
            return .randomCrop(width: w, height: h)
        case "resize":
            let (w, h) = try size()
            return .resize(width: w, height: h)
        case "shift":
            let text = try required("shift=PIXELS")
            let most = max(limits.maxWidth, limits.maxHeight)
            guard let k = Int(text), k >= 0, k <= most else {
                throw fail("shift expects a whole number of pixels in 0...\(most), got '\(text)'")
            }
            return .randomShift(k)
        case "rotate":
            let text = try required("rotate=DEGREES")
            guard let d = Float(text), d.isFinite, d >= 0 else {
                throw fail("rotate expects degrees >= 0, got '\(text)'")
            }
            return .randomRotation(degrees: d)
        case "":
            throw fail("empty item")
        default:
            throw fail("unknown transform '\(name)'; known: \(names)")
        }
    }
}

/// An ordered list of transforms applied one after another, e.g. built from a command-line spec.
public struct ImagePipeline: Sendable, Equatable, CustomStringConvertible {
    public var transforms: [ImageTransform]

    public init(_ transforms: [ImageTransform]) { self.transforms = transforms }

    /// Parses `spec` with `ImageTransform.parse`, its sizes held to `limits`.
    public init(spec: String, limits: InputLimits = .default) throws {
        self.init(try ImageTransform.parse(spec, limits: limits))
    }

    /// True when any step draws from the generator.
    public var isRandom: Bool { transforms.contains(where: \.isRandom) }

    /// Applies every step in order.
    public func apply(_ image: Image, generator: inout SeededGenerator) throws -> Image {
        var out = image
        for t in transforms { out = try t.apply(out, generator: &generator) }
        return out
    }

    /// The pipeline in spec syntax.
    public var description: String { transforms.map(\.description).joined(separator: ",") }
}

extension Image {
    /// Every sample multiplied by `factor`.
    public func scaled(by factor: Float) -> Image {
        Image(width: width, height: height, channels: channels, pixels: pixels.map { $0 * factor })
    }

    /// `(x - mean[c]) / std[c]` per channel; `mean` and `std` hold one value or one per channel.
    public func normalized(mean: [Float], std: [Float]) -> Image {
        precondition(mean.count == std.count && (mean.count == 1 || mean.count == channels),
                     "normalized: \(mean.count) means and \(std.count) stds for \(channels) channels")
        let m = mean.count == 1 ? [Float](repeating: mean[0], count: channels) : mean
        let inv = (std.count == 1 ? [Float](repeating: std[0], count: channels) : std).map { 1 / $0 }
        var out = pixels
        for i in 0..<out.count { let c = i % channels; out[i] = (out[i] - m[c]) * inv[c] }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    /// One-channel luma `0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601); a grey image is returned as is.
    public func greyscale() -> Image {
        guard channels == 3 else { return self }
        var out = [Float](repeating: 0, count: width * height)
        for i in 0..<out.count {
            out[i] = 0.299 * pixels[3 * i] + 0.587 * pixels[3 * i + 1] + 0.114 * pixels[3 * i + 2]
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    /// RGB to HSV as `skimage.color.rgb2hsv`: H in [0, 1) (fraction of a turn, 0 for greys), S in [0, 1],
    /// V = max(R, G, B) in the input's units, so [0, 1] input gives all three in [0, 1].
    public func rgbToHSV() -> Image {
        mapTriples { r, g, b in
            let v = max(r, g, b), delta = v - min(r, g, b)
            guard delta > 0 else { return (0, 0, v) }
            var h: Float
            if r == v {
                h = (g - b) / delta
            } else if g == v {
                h = 2 + (b - r) / delta
            } else {
                h = 4 + (r - g) / delta
            }
            h /= 6
            if h < 0 { h += 1 }
            return (h >= 1 ? 0 : h, delta / v, v)
        }
    }

    /// HSV (as produced by `rgbToHSV`) back to RGB in V's units.
    public func hsvToRGB() -> Image {
        mapTriples { h, s, v in
            let h6 = (h - h.rounded(.down)) * 6
            let sector = Int(h6.rounded(.down)) % 6, f = h6 - h6.rounded(.down)
            let p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s)
            switch sector {
            case 0: return (v, t, p)
            case 1: return (q, v, p)
            case 2: return (p, v, t)
            case 3: return (p, q, v)
            case 4: return (t, p, v)
            default: return (v, p, q)
            }
        }
    }

    /// RGB to full-range YCbCr as in JPEG (BT.601), for samples in [0, 255]: chroma is centred on 128.
    public func rgbToYCbCr() -> Image {
        mapTriples { r, g, b in
            (0.299 * r + 0.587 * g + 0.114 * b,
             128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
             128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
        }
    }

    /// Full-range JPEG YCbCr back to RGB (the inverse of `rgbToYCbCr`).
    public func yCbCrToRGB() -> Image {
        mapTriples { y, cb, cr in
            (y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128))
        }
    }

    private func mapTriples(_ f: (Float, Float, Float) -> (Float, Float, Float)) -> Image {
        precondition(channels == 3, "colour conversion needs 3 channels, got \(channels)")
        var out = pixels
        for i in stride(from: 0, to: out.count, by: 3) {
            (out[i], out[i + 1], out[i + 2]) = f(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }

    /// The `width` x `height` region whose top-left corner is column `x`, row `y` (it must lie inside the image).
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                     "cropped: region (\(x), \(y)) \(w)x\(h) is outside the \(width)x\(height) image")
        var out = [Float]()
        out.reserveCapacity(w * h * channels)
        for row in y..<(y + h) {
            let start = (row * width + x) * channels
            out.append(contentsOf: pixels[start..<(start + w * channels)])
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// The central `width` x `height` region; an odd margin leaves the extra pixel on the right or bottom.
    public func centreCropped(width w: Int, height h: Int) -> Image {
        cropped(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// Bilinear resize sampling like PyTorch `F.interpolate(mode: "bilinear", align_corners=False)`:
    /// output pixel `i` reads source position `(i + 0.5) * in / out - 0.5`, clamped at the edges (no antialiasing).
    public func resized(width w: Int, height h: Int) -> Image {
        precondition(w > 0 && h > 0 && width > 0 && height > 0,
                     "resized: cannot resize \(width)x\(height) to \(w)x\(h)")
        func taps(_ outSize: Int, _ inSize: Int) -> [(Int, Int, Float)] {
            let scale = Float(inSize) / Float(outSize)
            return (0..<outSize).map { i in
                let src = max((Float(i) + 0.5) * scale - 0.5, 0)
                let i0 = min(Int(src), inSize - 1)
                return (i0, min(i0 + 1, inSize - 1), src - Float(i0))
            }
        }
        let xs = taps(w, width), ys = taps(h, height)
        var out = [Float](repeating: 0, count: w * h * channels)
        for (oy, (y0, y1, fy)) in ys.enumerated() {
            for (ox, (x0, x1, fx)) in xs.enumerated() {
                for c in 0..<channels {
                    let top = pixels[(y0 * width + x0) * channels + c] * (1 - fx)
                        + pixels[(y0 * width + x1) * channels + c] * fx
                    let bottom = pixels[(y1 * width + x0) * channels + c] * (1 - fx)
                        + pixels[(y1 * width + x1) * channels + c] * fx
                    out[(oy * w + ox) * channels + c] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// The image moved `dx` pixels right and `dy` pixels down, with uncovered pixels set to 0.
    public func shifted(dx: Int, dy: Int) -> Image {
        var out = [Float](repeating: 0, count: pixels.count)
        for y in 0..<height where (0..<height).contains(y - dy) {
            for x in 0..<width where (0..<width).contains(x - dx) {
                for c in 0..<channels {
                    out[(y * width + x) * channels + c] = pixels[((y - dy) * width + x - dx) * channels + c]
                }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    /// The image rotated counter-clockwise (as displayed) by `degrees` about its centre, same size,
    /// bilinear sampling with 0 outside the source.
    public func rotated(degrees: Float) -> Image {
        let theta = degrees * .pi / 180
        let cosT = cos(theta), sinT = sin(theta)
        let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
        var out = [Float](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                let u = Float(x) - cx, v = Float(y) - cy
                let sx = u * cosT - v * sinT + cx, sy = u * sinT + v * cosT + cy
                let x0f = sx.rounded(.down), y0f = sy.rounded(.down)
                guard x0f >= -1 && y0f >= -1 && x0f < Float(width) && y0f < Float(height) else { continue }
                let x0 = Int(x0f), y0 = Int(y0f), fx = sx - x0f, fy = sy - y0f
                let o = (y * width + x) * channels
                for (dy, wy) in [(0, 1 - fy), (1, fy)] where (0..<height).contains(y0 + dy) {
                    for (dx, wx) in [(0, 1 - fx), (1, fx)] where (0..<width).contains(x0 + dx) {
                        let i = ((y0 + dy) * width + x0 + dx) * channels
                        for c in 0..<channels { out[o + c] += wy * wx * pixels[i + c] }
                    }
                }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }
}
