import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

@Suite struct ImageTests {
    /// A fresh folder under the system temporary directory for one test's files.
    private func scratchFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lstmvision-images-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> Image {
        var g = SeededGenerator(seed: seed)
        return Image(width: width, height: height, channels: channels,
                     pixels: (0..<(width * height * channels)).map { _ in Float(Int.random(in: 0...255, using: &g)) })
    }

    private func expectClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String) {
        #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) values")
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance, "\(what): worst difference \(worst)")
    }

    private var fixtureJPEG: String {
        Bundle.module.path(forResource: "small", ofType: "jpg", inDirectory: "Fixtures/images")!
    }

    // MARK: - Image

    /// A loader's batch holds the images and labels of its part of the epoch's order: a small batch (one thread) and
    /// one of 64 MNIST-sized images (gathered on two threads), the last one short.
    @Test func loaderBatchesGatherTheirImages() {
        let count = 150, size = 28 * 28
        let pixels = (0..<(count * size)).map { Float($0 % 9973) }
        let data = ImageDataset(height: 28, width: 28, channels: 1, pixels: pixels, labels: (0..<count).map { $0 % 10 },
                                classNames: (0..<10).map(String.init))
        for batchSize in [5, 64] {
            let loader = DataLoader(data, batchSize: batchSize, shuffle: true, seed: 3)
            let order = loader.order(epoch: 1)
            #expect(Set(order) == Set(0..<count) && order != Array(0..<count))
            var seen: [Int] = []
            for b in 0..<loader.batchesPerEpoch {
                let (x, y) = loader.batch(b, of: order, from: data)
                let ids = Array(order[(b * batchSize)..<min(count, (b + 1) * batchSize)])
                #expect(x.shape == [ids.count, 28, 28] && y == ids.map { $0 % 10 })
                #expect(x.scalars == ids.flatMap { pixels[($0 * size)..<(($0 + 1) * size)] },
                        "batch \(b) of \(batchSize)")
                seen += ids
            }
            #expect(seen.sorted() == Array(0..<count))
        }
    }

    @Test func tensorRoundTripIsCHW() {
        let image = Image(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        let t = image.tensor()
        #expect(t.shape == [3, 1, 2])
        #expect(t.scalars == [1, 4, 2, 5, 3, 6])
        #expect(Image(tensor: t) == image)
        #expect(image[x: 1, y: 0, c: 2] == 6)
    }

    // MARK: - Codecs

    @Test func pngRoundTripIsExact() throws {
        let dir = try scratchFolder()
        for channels in [1, 3] {
            let image = randomImage(width: 7, height: 5, channels: channels, seed: UInt64(channels))
            let path = dir + "/rt\(channels).png"
            try ImageCodecs.writePNG(image, to: path)
            #expect(try ImageCodecs.read(path) == image)
        }
        let odd = Image(width: 4, height: 1, channels: 1, pixels: [-3, 300, 12.6, .nan])
        try ImageCodecs.writePNG(odd, to: dir + "/clamp.png")
        #expect(try ImageCodecs.read(dir + "/clamp.png").pixels == [0, 255, 13, 0])
    }

    @Test func pngVariantsDecodeToGreyOrRGB() throws {
        func fixture(_ name: String) -> String {
            Bundle.module.path(forResource: name, ofType: "png", inDirectory: "Fixtures/images")!
        }
        let palette = try ImageCodecs.read(fixture("palette"))
        #expect(palette.channels == 3 && palette.pixels == [10, 20, 30, 40, 50, 60, 70, 80, 90])
        let grey16 = try ImageCodecs.read(fixture("grey16"))
        #expect(grey16.channels == 1 && grey16.pixels == [0, 128, 255])
        // Alpha is composited onto black: opaque red stays, half-transparent green darkens, transparent blue vanishes.
        let rgba = try ImageCodecs.read(fixture("rgba")).pixels
        #expect(rgba.count == 9 && Array(rgba[0..<3]) == [255, 0, 0] && Array(rgba[6..<9]) == [0, 0, 0])
        #expect(rgba[3] == 0 && rgba[5] == 0 && rgba[4] > 100 && rgba[4] < 220,
                "half-transparent green gave \(rgba[3..<6])")
    }

    @Test func pnmRoundTripAndHeaders() throws {
        let dir = try scratchFolder()
        for channels in [1, 3] {
            let image = randomImage(width: 6, height: 4, channels: channels, seed: 10 + UInt64(channels))
            let path = dir + "/rt\(channels).pnm"
            try ImageCodecs.writePGM(image, to: path)
            let header = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)).prefix(2), as: UTF8.self)
            #expect(header == (channels == 1 ? "P5" : "P6"))
            #expect(try ImageCodecs.read(path) == image)
        }
        // Comments, 16-bit big-endian samples and rescaling of maxval 1000 to [0, 255].
        let wide = Array("P5 # comment\n2 1\n# another\n1000\n".utf8) + [0x00, 0x00, 0x03, 0xE8]
        #expect(try ImageCodecs.decode(wide, source: "wide.pgm").pixels == [0, 255])
        let small = Array("P5\n3 1\n3\n".utf8) + [0, 1, 3]
        expectClose(try ImageCodecs.decode(small, source: "s.pgm").pixels, [0, 85, 255], 1e-4, "maxval 3")

        let zero = imageError { try ImageCodecs.decode(Array("P5\n1 1\n0\n\u{0}".utf8), source: "z.pgm") }
        #expect(zero?.description == "z.pgm: unsupported PGM maxval 0")
        let big = imageError { try ImageCodecs.decode(Array("P6\n1 1\n70000\n".utf8), source: "b.ppm") }
        #expect(big?.description == "b.ppm: unsupported PPM maxval 70000")
        let over = imageError { try ImageCodecs.decode(Array("P5\n1 1\n10\n".utf8) + [11], source: "o.pgm") }
        #expect(over?.description == "o.pgm: corrupt PGM data: sample 11 exceeds maxval 10")
        let ascii = imageError { try ImageCodecs.decode(Array("P2\n1 1\n255\n7\n".utf8), source: "a.pgm") }
        #expect(ascii?.description.hasPrefix("a.pgm: unsupported PNM variant P2") == true)
    }

    @Test func jpegFixtureDecodesToItsColour() throws {
        let image = try ImageCodecs.read(fixtureJPEG)
        #expect(image.width == 24 && image.height == 16 && image.channels == 3)
        var worst: Float = 0
        for i in 0..<(image.width * image.height) {
            for (c, expected) in [Float(200), 100, 50].enumerated() {
                worst = max(worst, abs(image.pixels[3 * i + c] - expected))
            }
        }
        #expect(worst <= 3, "solid (200, 100, 50) decoded with worst error \(worst)")
    }

    @Test func truncatedAndDamagedFilesThrow() throws {
        let dir = try scratchFolder()
        try ImageCodecs.writePNG(randomImage(width: 40, height: 30, channels: 3, seed: 5), to: dir + "/full.png")
        try ImageCodecs.writePGM(randomImage(width: 8, height: 8, channels: 1, seed: 6), to: dir + "/full.pgm")
        let sources: [(String, [UInt8])] = [
            ("png", Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/full.png")))),
            ("jpg", Array(try Data(contentsOf: URL(fileURLWithPath: fixtureJPEG)))),
            ("pgm", Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/full.pgm")))),
        ]
        for (ext, bytes) in sources {
            for length in [4, 20, bytes.count / 2, bytes.count - 20] {
                let path = dir + "/cut\(length).\(ext)"
                try Data(bytes.prefix(length)).write(to: URL(fileURLWithPath: path))
                let error = imageError { try ImageCodecs.read(path) }
                #expect(error?.description.hasPrefix(path + ": ") == true,
                        "\(ext) cut to \(length): \(String(describing: error))")
            }
            let half = dir + "/half.\(ext)"
            try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: half))
            let format = ["png": "PNG", "jpg": "JPEG", "pgm": "PGM"][ext]!
            #expect(imageError { try ImageCodecs.read(half) } == .truncated(path: half, format: format))
            #expect(imageError { try ImageCodecs.read(half) }?.description == "\(half): truncated \(format) data")
        }
        // Damaged JPEG entropy data is reported, not decoded to filler.
        var jpeg = sources[1].1
        for i in (jpeg.count - 60)..<(jpeg.count - 2) { jpeg[i] = 0xFF }
        if case .corrupt? = imageError({ try ImageCodecs.decode(jpeg, source: "bad.jpg") }) {} else {
            Issue.record("damaged JPEG should be reported as corrupt")
        }
        #expect(imageError { try ImageCodecs.decode([1, 2, 3, 4], source: "x.bin") } == .unknownFormat(path: "x.bin"))
        #expect(throws: DataError.missing("\(dir)/missing.png: no such file")) {
            try ImageCodecs.read(dir + "/missing.png")
        }
    }

    @Test func oversizedHeadersThrowBeforeDecoding() throws {
        let huge = Array("P5\n100000 100000\n255\n".utf8) + [0, 0, 0]
        #expect(imageError { try ImageCodecs.decode(huge, source: "huge.pgm") }
                == .tooLarge(path: "huge.pgm", width: 100000, height: 100000, limits: .default))
        let overflow = Array("P6\n999999999 999999999\n255\n".utf8)
        let limits = InputLimits(maxWidth: .max, maxHeight: .max, maxPixels: 1 << 40)
        if case .tooLarge? = imageError({ try ImageCodecs.decode(overflow, source: "o.ppm", limits: limits) }) {} else {
            Issue.record("999999999 squared pixels should exceed maxPixels")
        }
        let dir = try scratchFolder()
        try ImageCodecs.writePNG(Image(width: 64, height: 2, channels: 1), to: dir + "/wide.png")
        #expect(imageError { try ImageCodecs.read(dir + "/wide.png", limits: InputLimits(maxWidth: 32)) }
                == .tooLarge(path: dir + "/wide.png", width: 64, height: 2, limits: InputLimits(maxWidth: 32)))
        let few = InputLimits(maxPixels: 100)
        #expect(imageError { try ImageCodecs.read(fixtureJPEG, limits: few) }
                == .tooLarge(path: fixtureJPEG, width: 24, height: 16, limits: few))
        // The error lists the settings passed, for the CLI to name its options.
        #expect(imageError { try ImageCodecs.read(fixtureJPEG, limits: few) }?.exceededLimits == [.maxPixels])
        #expect(imageError { try ImageCodecs.decode(huge, source: "huge.pgm") }?.exceededLimits
                == [.maxWidth, .maxHeight, .maxPixels])
    }

    /// An image folder whose decoded images together pass `maxDatasetBytes` is refused, naming the option; at the
    /// limit it loads.
    @Test func imageFolderMemoryIsBounded() throws {
        let dir = try scratchFolder()
        for (k, name) in ["a", "b"].enumerated() {
            try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true)
            for i in 0..<3 {
                try ImageCodecs.writePNG(randomImage(width: 4, height: 2, channels: 1, seed: UInt64(3 * k + i)),
                                         to: dir + "/\(name)/\(i).png")
            }
        }
        let pipeline = try ImagePipeline(spec: "scale")
        let six = InputLimits(maxDatasetBytes: 6 * 8 * 4)   // six 8-pixel images
        let all = try ImageFolder.load(dir, pipeline: pipeline, limits: six)
        #expect(all.count == 6)
        let refusal = "\(dir): its images take more than 100 bytes in memory (after 3 images; maxDatasetBytes)"
        #expect(throws: DataError.tooLarge(refusal, limit: .maxDatasetBytes)) {
            try ImageFolder.load(dir, pipeline: pipeline, limits: InputLimits(maxDatasetBytes: 100))
        }
    }

    // MARK: - Transforms

    @Test func colourConversions() {
        let rgb = Image(width: 3, height: 1, channels: 3, pixels: [255, 0, 0, 10, 20, 30, 255, 255, 255])
        expectClose(rgb.greyscale().pixels, [76.245, 18.15, 255], 1e-3, "grey")
        #expect(rgb.greyscale().channels == 1)

        let unit = Image(width: 3, height: 1, channels: 3, pixels: [1, 0.5, 0, 0.2, 0.4, 0.6, 0.3, 0.3, 0.3])
        expectClose(unit.rgbToHSV().pixels, [1.0 / 12, 1, 1, 7.0 / 12, 2.0 / 3, 0.6, 0, 0, 0.3], 1e-5, "hsv")
        expectClose(rgb.rgbToYCbCr().pixels.prefix(3).map { $0 }, [76.245, 84.97232, 255.5], 1e-3, "ycbcr red")

        let random = randomImage(width: 16, height: 16, channels: 3, seed: 9)
        expectClose(random.scaled(by: 1 / 255).rgbToHSV().hsvToRGB().pixels, random.scaled(by: 1 / 255).pixels, 1e-3,
                    "hsv round trip")
        expectClose(random.rgbToHSV().hsvToRGB().pixels, random.pixels, 1e-3, "hsv round trip 0-255")
        expectClose(random.rgbToYCbCr().yCbCrToRGB().pixels, random.pixels, 1e-3, "ycbcr round trip")
    }

    @Test func resizeMatchesPyTorchBilinear() {
        let tiny = Image(width: 2, height: 2, channels: 1, pixels: [0, 1, 2, 3])
        expectClose(tiny.resized(width: 4, height: 4).pixels,
                    [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3], 1e-6,
                    "2x2 to 4x4")
        // Values from torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on arange(15)**1.5.
        let source = Image(width: 5, height: 3, channels: 1, pixels: (0..<15).map { powf(Float($0), 1.5) })
        expectClose(source.resized(width: 3, height: 2).pixels,
                    [3.338135, 6.751385, 11.684656, 28.020241, 35.806976, 44.295258], 1e-3, "5x3 to 3x2")
        expectClose(source.resized(width: 7, height: 4).pixels,
                    [0.0, 0.571429, 1.522408, 2.828427, 4.51966, 6.397801, 8.0,
                     6.987712, 8.457926, 10.439226, 12.635822, 15.103587, 17.71254, 19.875,
                     18.846253, 21.143631, 24.094364, 27.16362, 30.417604, 33.776127, 36.5187,
                     31.622776, 34.39997, 37.936115, 41.569218, 45.35704, 49.23404, 52.3832], 1e-3, "5x3 to 7x4")
        let rgb = randomImage(width: 5, height: 4, channels: 3, seed: 3)
        #expect(rgb.resized(width: 5, height: 4) == rgb)
    }

    @Test func geometricTransforms() {
        let image = Image(width: 4, height: 3, channels: 1, pixels: (0..<12).map(Float.init))
        #expect(image.centreCropped(width: 2, height: 1).pixels == [5, 6])
        #expect(image.cropped(x: 1, y: 1, width: 3, height: 2).pixels == [5, 6, 7, 9, 10, 11])
        #expect(image.shifted(dx: 1, dy: -1).pixels == [0, 4, 5, 6, 0, 8, 9, 10, 0, 0, 0, 0])
        let square = Image(width: 3, height: 3, channels: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        // Counter-clockwise: the right column becomes the top row.
        expectClose(square.rotated(degrees: 90).pixels, [3, 6, 9, 2, 5, 8, 1, 4, 7], 1e-4, "rotate 90")
        expectClose(square.rotated(degrees: 0).pixels, square.pixels, 0, "rotate 0")
        let normalized = Image(width: 1, height: 2, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
            .normalized(mean: [1, 2, 3], std: [1, 2, 4])
        #expect(normalized.pixels == [0, 0, 0, 3, 1.5, 0.75])
    }

    @Test func pipelineIsSeededAndValidates() throws {
        let pipeline = try ImagePipeline(
            spec: "grey, resize=20x16, scale, normalize=0.1307/0.3081, randomcrop=16x16, shift=2, rotate=10")
        #expect(pipeline.isRandom)
        let input = randomImage(width: 28, height: 28, channels: 3, seed: 4)
        var g1 = SeededGenerator(seed: 1), g2 = SeededGenerator(seed: 1), g3 = SeededGenerator(seed: 2)
        let a = try pipeline.apply(input, generator: &g1), b = try pipeline.apply(input, generator: &g2)
        #expect(a == b)
        #expect(a.width == 16 && a.height == 16 && a.channels == 1)
        #expect(try pipeline.apply(input, generator: &g3) != a)

        var g = SeededGenerator(seed: 0)
        let scaled = try ImagePipeline(spec: "scale,normalize=0.5/0.25").apply(
            Image(width: 1, height: 1, channels: 1, pixels: [255]), generator: &g)
        expectClose(scaled.pixels, [2], 1e-5, "scale then normalize")
        let grey = Image(width: 4, height: 4, channels: 1)
        #expect(throws: ImageTransformError.self) { try ImageTransform.rgbToHSV.apply(grey, generator: &g) }
        #expect(throws: ImageTransformError.self) {
            try ImageTransform.centreCrop(width: 5, height: 1).apply(grey, generator: &g)
        }
        #expect(throws: ImageTransformError.self) {
            try ImageTransform.normalize(mean: [0, 0, 0], std: [1, 1, 1]).apply(grey, generator: &g)
        }
    }

    @Test func parseGrammarAndErrors() throws {
        let steps = try ImageTransform.parse("Grey,resize=28x28,scale,normalize=0.485:0.456:0.406/0.229:0.224:0.225,"
            + "crop=24x20,randomcrop=8x8,shift=2,rotate=10,rgb2hsv,hsv2rgb,rgb2ycbcr,ycbcr2rgb")
        #expect(steps == [.grey, .resize(width: 28, height: 28), .scale,
                          .normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]),
                          .centreCrop(width: 24, height: 20), .randomCrop(width: 8, height: 8), .randomShift(2),
                          .randomRotation(degrees: 10), .rgbToHSV, .hsvToRGB, .rgbToYCbCr, .yCbCrToRGB])
        #expect(try ImageTransform.parse(ImagePipeline(steps).description) == steps)
        #expect(try ImageTransform.parse("  ") == [])

        func message(_ spec: String) -> String {
            do {
                _ = try ImageTransform.parse(spec)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(message("grey,blur=3").contains("unknown transform 'blur'"))
        #expect(message("resize=28").contains("resize expects WIDTHxHEIGHT"))
        #expect(message("resize").contains("resize needs an argument"))
        #expect(message("scale=2").contains("scale takes no argument"))
        #expect(message("normalize=0.1:0.2/0.3").contains("normalize expects MEAN/STD"))
        #expect(message("normalize=0.1/0").contains("normalize expects MEAN/STD"))
        #expect(message("shift=-1").contains("shift expects"))
        // Sizes a pipeline would allocate are held to the image limits (a resize to 10^10 pixels ran out of memory,
        // a shift near Int.max overflowed).
        #expect(message("resize=100000x100000") == "transform spec \"resize=100000x100000\":"
                + " resize size 100000x100000 exceeds the image limits"
                + " of 16384x16384 and 100000000 pixels (maxWidth, maxHeight, maxPixels)")
        #expect(message("crop=10000x10001").contains("crop size 10000x10001 exceeds the image limits"))
        #expect(throws: ImageTransformError.self) { try ImageTransform.parse("crop=10000x10001") }
        do { _ = try ImageTransform.parse("crop=10000x10001") } catch let e as ImageTransformError {
            #expect(e.exceededLimits == [.maxPixels])
        }
        // The limits are the caller's: larger ones let the same spec through.
        let large = InputLimits(maxWidth: 1 << 17, maxHeight: 1 << 17, maxPixels: 1 << 34)
        #expect(try ImageTransform.parse("resize=100000x100000", limits: large)
                == [.resize(width: 100000, height: 100000)])
        #expect(message("shift=9223372036854775807").contains("shift expects a whole number of pixels in 0...16384"))
        #expect(message("rotate=x").contains("rotate expects"))
        #expect(message("grey,,scale").contains("empty item"))
        #expect(message("blur").hasPrefix("transform spec \"blur\": "))
    }

    // MARK: - Plot

    @Test func lineChartDrawsSeries() throws {
        let chart = Plot.lineChart(series: [(name: "train loss", values: [2.3, 1.1, 0.7, 0.5, .nan, 0.4]),
                                            (name: "val accuracy", values: [0.2, 0.6, 0.8, 0.9, 0.92, 0.95])],
                                   title: "Training: loss 97.5%", width: 320, height: 200)
        #expect(chart.width == 320 && chart.height == 200 && chart.channels == 3)
        let rgb = stride(from: 0, to: chart.pixels.count, by: 3).map {
            (chart.pixels[$0], chart.pixels[$0 + 1], chart.pixels[$0 + 2])
        }
        #expect(rgb.filter { $0 != (255, 255, 255) }.count > 1000)
        for colour in Colour.palette.prefix(2) {
            #expect(rgb.filter { $0 == (colour.r, colour.g, colour.b) }.count > 50, "series colour \(colour) missing")
        }
        let path = try scratchFolder() + "/chart.png"
        try ImageCodecs.writePNG(chart, to: path)
        #expect(try ImageCodecs.read(path) == chart)
        let empty = Plot.lineChart(series: [], title: "empty")
        #expect(empty.width == 640 && empty.height == 400)
    }

    @Test func boxesAndText() {
        var image = Image(width: 10, height: 8, channels: 3)
        image.drawBox(x: 1, y: 1, width: 6, height: 5, colour: .white, thickness: 2)
        #expect(image[x: 1, y: 1, c: 0] == 255 && image[x: 2, y: 2, c: 1] == 255 && image[x: 6, y: 5, c: 2] == 255)
        #expect(image[x: 3, y: 3, c: 0] == 0 && image[x: 7, y: 1, c: 0] == 0 && image[x: 0, y: 0, c: 0] == 0)
        image.drawBox(x: -5, y: -5, width: 100, height: 100, colour: .red)

        var grey = Image(width: 12, height: 9, channels: 1)
        grey.drawText("1", x: 1, y: 1, colour: .white)
        // Glyph "1": rows 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E.
        let lit = (0..<9).flatMap { y in (0..<12).filter { grey[x: $0, y: y, c: 0] > 0 }.map { ($0, y) } }
        #expect(lit.count == 10)
        #expect(lit.contains { $0 == (3, 1) } && lit.contains { $0 == (2, 2) } && lit.contains { $0 == (4, 7) })
        #expect(BitmapFont.size(of: "ab", scale: 2) == (width: 22, height: 14))
    }
}
