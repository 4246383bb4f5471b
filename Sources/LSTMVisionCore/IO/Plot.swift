import Foundation

/// An RGB drawing colour with components in [0, 255]; on grey images its BT.601 luma is drawn.
public struct Colour: Sendable, Equatable {
    public var r: Float
    public var g: Float
    public var b: Float

    public init(_ r: Float, _ g: Float, _ b: Float) {
        self.r = r
        self.g = g
        self.b = b
    }

    public static let black = Colour(0, 0, 0)
    public static let white = Colour(255, 255, 255)
    public static let red = Colour(214, 39, 40)
    public static let green = Colour(44, 160, 44)
    public static let blue = Colour(31, 119, 180)

    /// Ten well-separated colours (matplotlib's tab10) for chart series and box labels, used in turn.
    public static let palette: [Colour] = [
        Colour(31, 119, 180), Colour(255, 127, 14), Colour(44, 160, 44), Colour(214, 39, 40), Colour(148, 103, 189),
        Colour(140, 86, 75), Colour(227, 119, 194), Colour(127, 127, 127), Colour(188, 189, 34), Colour(23, 190, 207),
    ]
}

/// Simple raster drawing on images (boxes, lines, 5x7 bitmap text), for training curves and detector output.
/// Everything is clipped to the image, so shapes may extend past its edges.
extension Image {
    /// Sets one pixel if it lies inside the image.
    public mutating func setPixel(x: Int, y: Int, colour: Colour) {
        guard x >= 0 && x < width && y >= 0 && y < height else { return }
        let i = (y * width + x) * channels
        if channels == 3 {
            pixels[i] = colour.r
            pixels[i + 1] = colour.g
            pixels[i + 2] = colour.b
        } else {
            pixels[i] = 0.299 * colour.r + 0.587 * colour.g + 0.114 * colour.b
        }
    }

    /// Fills the rectangle with top-left corner (x, y).
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, colour: Colour) {
        let x0 = max(x, 0), x1 = min(x + w, width), y0 = max(y, 0), y1 = min(y + h, height)
        guard x0 < x1 && y0 < y1 else { return }
        for yy in y0..<y1 {
            for xx in x0..<x1 { setPixel(x: xx, y: yy, colour: colour) }
        }
    }

    /// Outlines the rectangle with top-left corner (x, y); the border of `thickness` pixels lies inside it.
    public mutating func drawBox(x: Int, y: Int, width w: Int, height h: Int, colour: Colour, thickness: Int = 1) {
        let t = max(1, min(thickness, (min(w, h) + 1) / 2))
        fillRect(x: x, y: y, width: w, height: t, colour: colour)
        fillRect(x: x, y: y + h - t, width: w, height: t, colour: colour)
        fillRect(x: x, y: y + t, width: t, height: h - 2 * t, colour: colour)
        fillRect(x: x + w - t, y: y + t, width: t, height: h - 2 * t, colour: colour)
    }

    /// Draws a straight line (Bresenham) with a square pen `thickness` pixels wide.
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, colour: Colour, thickness: Int = 1) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        let offset = (thickness - 1) / 2
        var x = x0, y = y0, err = dx + dy
        while true {
            fillRect(x: x - offset, y: y - offset, width: thickness, height: thickness, colour: colour)
            if x == x1 && y == y1 { return }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Draws `text` with its top-left corner at (x, y) in a 5x7 bitmap font magnified `scale` times.
    /// Covers digits, letters (lower case drawn as upper case) and ` .,:;-+=%/()_?`; others draw as `?`.
    public mutating func drawText(_ text: String, x: Int, y: Int, colour: Colour, scale: Int = 1) {
        var left = x
        for ch in text.uppercased() {
            let rows = BitmapFont.glyphs[ch] ?? BitmapFont.glyphs["?"]!
            for (r, bits) in rows.enumerated() {
                for c in 0..<5 where bits & (0x10 >> c) != 0 {
                    fillRect(x: left + c * scale, y: y + r * scale, width: scale, height: scale, colour: colour)
                }
            }
            left += BitmapFont.advance * scale
        }
    }

    /// Draws a detector-style label: `text` in white on a filled box of `colour` whose bottom-left is (x, y).
    public mutating func drawLabel(_ text: String, x: Int, y: Int, colour: Colour, scale: Int = 1) {
        let size = BitmapFont.size(of: text, scale: scale)
        let top = y - size.height - 2 * scale
        fillRect(x: x, y: top, width: size.width + 2 * scale, height: size.height + 2 * scale, colour: colour)
        drawText(text, x: x + scale, y: top + scale, colour: .white, scale: scale)
    }
}

/// The fixed-size bitmap font used by `Image.drawText`: 5x7 glyphs on a 6-pixel advance, rows as 5-bit masks.
public enum BitmapFont {
    /// Horizontal distance from one character to the next, before scaling.
    public static let advance = 6
    public static let glyphHeight = 7

    /// Width and height in pixels of `text` drawn at `scale` (no trailing gap after the last character).
    public static func size(of text: String, scale: Int = 1) -> (width: Int, height: Int) {
        (text.isEmpty ? 0 : (text.count * advance - 1) * scale, glyphHeight * scale)
    }

    static let glyphs: [Character: [UInt8]] = [
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "A": [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        " ": [0, 0, 0, 0, 0, 0, 0], ".": [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ",": [0, 0, 0, 0, 0x0C, 0x04, 0x08], ":": [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        ";": [0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08], "-": [0, 0, 0, 0x1F, 0, 0, 0],
        "+": [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0], "=": [0, 0, 0x1F, 0, 0x1F, 0, 0],
        "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], "/": [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02], ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        "_": [0, 0, 0, 0, 0, 0, 0x1F], "?": [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
    ]
}

/// Raster charts written as PNG, such as the per-epoch loss and accuracy curves of a training run.
public enum Plot {
    /// A white RGB line chart of `series` against their index (1, 2, ... along the x axis, labelled `xLabel`),
    /// with a title, a grid, numbered ticks on both axes and a legend. Non-finite values leave gaps.
    public static func lineChart(series: [(name: String, values: [Float])], title: String, xLabel: String = "epoch",
                                 width: Int = 640, height: Int = 400) -> Image {
        precondition(width >= 160 && height >= 120, "lineChart: size \(width)x\(height) is below 160x120")
        let count = series.map(\.values.count).max() ?? 0
        let xHi = Double(max(count, 2))
        let xStep = max(1, niceStep((xHi - 1) / 8).rounded(.up))
        var chart = Frame(title: title, xLabel: xLabel, width: width, height: height, xLo: 1, xHi: xHi, xStep: xStep,
                          xTick: { String(Int($0)) }, yValues: series.flatMap(\.values).map(Double.init))
        for (s, entry) in series.enumerated() {
            let colour = Colour.palette[s % Colour.palette.count]
            var previous: (Int, Int)?
            for (i, v) in entry.values.enumerated() {
                guard v.isFinite else { previous = nil; continue }
                let point = (chart.px(Double(i + 1)), chart.py(Double(v)))
                if let p = previous {
                    chart.image.drawLine(x0: p.0, y0: p.1, x1: point.0, y1: point.1, colour: colour, thickness: 2)
                }
                if count <= 40 {
                    chart.image.fillRect(x: point.0 - 2, y: point.1 - 2, width: 5, height: 5, colour: colour)
                }
                previous = point
            }
        }
        chart.legend(series.map(\.name))
        return chart.image
    }

    /// A white RGB scatter chart of `groups` of (x, y) points, each group in its palette colour with a legend entry,
    /// on the same axes as `lineChart` (x ticks at round values; `logX` plots log10 x, ticks labelled with x).
    /// Non-finite points are left out.
    public static func scatterChart(groups: [(name: String, points: [(x: Double, y: Double)])], title: String,
                                    xLabel: String, logX: Bool = false, width: Int = 640,
                                    height: Int = 400) -> Image {
        precondition(width >= 160 && height >= 120, "scatterChart: size \(width)x\(height) is below 160x120")
        func fx(_ x: Double) -> Double { logX ? log10(x) : x }
        let xs = groups.flatMap(\.points).map { fx($0.x) }.filter(\.isFinite)
        var lo = xs.min() ?? 0, hi = xs.max() ?? 1
        if hi - lo < 1e-9 * max(abs(hi), 1) { (lo, hi) = (lo - 0.5, hi + 0.5) }
        let step = logX ? max(1, niceStep((hi - lo) / 6)) : niceStep((hi - lo) / 6)
        let xLo = (lo / step).rounded(.down) * step, xHi = (hi / step).rounded(.up) * step
        let decimals = max(0, Int(-log10(step).rounded(.down)))
        var chart = Frame(title: title, xLabel: xLabel, width: width, height: height, xLo: xLo, xHi: xHi, xStep: step,
                          xTick: { logX ? String(format: "%g", pow(10, $0)) : String(format: "%.\(decimals)f", $0) },
                          yValues: groups.flatMap(\.points).map(\.y))
        for (g, group) in groups.enumerated() {
            let colour = Colour.palette[g % Colour.palette.count]
            for p in group.points where fx(p.x).isFinite && p.y.isFinite {
                chart.image.fillRect(x: chart.px(fx(p.x)) - 3, y: chart.py(p.y) - 3, width: 7, height: 7,
                                     colour: colour)
            }
        }
        chart.legend(groups.map(\.name))
        return chart.image
    }

    /// A chart's canvas: title, the plot area with grid, ticks and axis labels, and the mapping of values to pixels.
    struct Frame {
        var image: Image
        let left: Int, right: Int, top: Int, bottom: Int
        let xLo: Double, xHi: Double, yLo: Double, yHi: Double

        /// Draws everything but the data: y from the finite `yValues` (in Double: Float's extremes, from a diverging
        /// run, would overflow hi − lo), x from `xLo` to `xHi` with a tick every `xStep`.
        init(title: String, xLabel: String, width: Int, height: Int, xLo: Double, xHi: Double, xStep: Double,
             xTick: (Double) -> String, yValues: [Double]) {
            image = Image(width: width, height: height, channels: 3, repeating: 255)
            let titleSize = BitmapFont.size(of: title, scale: 2)
            image.drawText(title, x: (width - titleSize.width) / 2, y: 8, colour: .black, scale: 2)
            (left, right, top, bottom) = (64, width - 16, 34, height - 36)
            let finite = yValues.filter(\.isFinite)
            var lo = finite.min() ?? 0, hi = finite.max() ?? 1
            if hi - lo < 1e-6 * max(abs(hi), 1) {
                let pad = max(abs(lo), 1) / 2
                lo -= pad
                hi += pad
            }
            let yStep = niceStep((hi - lo) / 5)
            (self.xLo, self.xHi) = (xLo, xHi)
            (yLo, yHi) = ((lo / yStep).rounded(.down) * yStep, (hi / yStep).rounded(.up) * yStep)

            let grid = Colour(225, 225, 225), decimals = max(0, Int(-log10(yStep).rounded(.down)))
            for k in 0...Int(((yHi - yLo) / yStep).rounded()) {
                let v = yLo + Double(k) * yStep, y = py(v)
                image.drawLine(x0: left, y0: y, x1: right, y1: y, colour: grid)
                image.drawLine(x0: left - 4, y0: y, x1: left, y1: y, colour: .black)
                let label = String(format: "%.\(decimals)f", v == 0 ? 0 : v)
                image.drawText(label, x: left - 7 - BitmapFont.size(of: label).width, y: y - 3, colour: .black)
            }
            var xv = xLo
            while xv <= xHi + 1e-3 * xStep {
                let x = px(xv), label = xTick(xv)
                image.drawLine(x0: x, y0: top, x1: x, y1: bottom, colour: grid)
                image.drawLine(x0: x, y0: bottom, x1: x, y1: bottom + 4, colour: .black)
                image.drawText(label, x: x - BitmapFont.size(of: label).width / 2, y: bottom + 7, colour: .black)
                xv += xStep
            }
            image.drawBox(x: left, y: top, width: right - left + 1, height: bottom - top + 1, colour: .black)
            let xLabelSize = BitmapFont.size(of: xLabel)
            image.drawText(xLabel, x: (left + right - xLabelSize.width) / 2, y: bottom + 20, colour: .black)
        }

        func px(_ x: Double) -> Int { left + Int(((x - xLo) / (xHi - xLo) * Double(right - left)).rounded()) }
        func py(_ y: Double) -> Int { bottom - Int(((y - yLo) / (yHi - yLo) * Double(bottom - top)).rounded()) }

        /// The legend box at the top right, one entry per name in the palette's colours.
        mutating func legend(_ names: [String]) {
            guard !names.isEmpty else { return }
            let legendWidth = (names.map { BitmapFont.size(of: $0).width }.max() ?? 0) + 30
            let legendX = right - legendWidth - 8, legendY = top + 8
            image.fillRect(x: legendX, y: legendY, width: legendWidth, height: names.count * 12 + 6, colour: .white)
            image.drawBox(x: legendX, y: legendY, width: legendWidth, height: names.count * 12 + 6,
                          colour: Colour(160, 160, 160))
            for (s, name) in names.enumerated() {
                let y = legendY + 5 + s * 12, colour = Colour.palette[s % Colour.palette.count]
                image.fillRect(x: legendX + 5, y: y + 2, width: 16, height: 3, colour: colour)
                image.drawText(name, x: legendX + 25, y: y, colour: .black)
            }
        }
    }

    /// A round step (1, 2 or 5 times a power of ten) close to `raw`, for axis ticks.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 && raw.isFinite else { return 1 }
        let magnitude = pow(10, log10(raw).rounded(.down)), norm = raw / magnitude
        return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude
    }
}
