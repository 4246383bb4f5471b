import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore
@testable import LSTMVisionFuzz

/// The image formats as they come, against Pillow: every fixture under Fixtures/images made by
/// tools/make_image_fixtures.py is decoded and compared with `<name>.ref.ppm`/`.ref.pgm`, Pillow's decoding of it
/// (alpha composited onto black, CMYK converted to RGB, EXIF orientation undone).
@Suite struct ImageCodecTests {
    private func path(_ name: String) -> String {
        let url = URL(fileURLWithPath: name)
        guard let found = Bundle.module.path(forResource: url.deletingPathExtension().lastPathComponent,
                                             ofType: url.pathExtension, inDirectory: "Fixtures/images") else {
            Issue.record("missing fixture \(name)")
            return name
        }
        return found
    }

    private func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    /// Pillow's decoding of fixture `name` (the .ref.ppm, or .ref.pgm for grey output).
    private func reference(_ name: String) throws -> Image {
        let base = (name as NSString).deletingPathExtension
        let ppm = Bundle.module.path(forResource: base + ".ref", ofType: "ppm", inDirectory: "Fixtures/images")
        return try ImageCodecs.read(ppm ?? path(base + ".ref.pgm"))
    }

    /// The largest absolute difference between two images of the same size (infinity when the sizes differ).
    private func worst(_ a: Image, _ b: Image) -> Float {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return .infinity }
        return zip(a.pixels, b.pixels).map { abs($0 - $1) }.max() ?? 0
    }

    /// Decodes fixture `name`, compares it with Pillow's pixels and returns the worst difference. Unless
    /// `anyDiffer`, at most 5% of the samples may differ at all: a systematic rounding error changes far more.
    @discardableResult
    private func expectMatchesPillow(_ name: String, within tolerance: Float, anyDiffer: Bool = false) throws
        -> Float {
        let decoded = try ImageCodecs.read(path(name))
        let expected = try reference(name)
        let size = { (i: Image) in "\(i.width)x\(i.height)x\(i.channels)" }
        #expect(size(decoded) == size(expected), "\(name): \(size(decoded)), Pillow \(size(expected))")
        let difference = worst(decoded, expected)
        #expect(difference <= tolerance, "\(name): worst difference from Pillow \(difference) > \(tolerance)")
        let differing = zip(decoded.pixels, expected.pixels).filter { $0 != $1 }.count
        #expect(anyDiffer || differing * 20 <= expected.pixels.count, "\(name): \(differing) samples differ")
        return difference
    }

    // MARK: - PNG

    /// 8-bit PNGs are lossless and so is the compositing arithmetic (Pillow's, c·a/255 rounded): exact.
    @Test(arguments: ["png-grey", "png-rgb", "png-palette", "png-palette-trns", "png-greyalpha", "png-rgba"])
    func eightBitPNGMatchesPillowExactly(_ name: String) throws {
        try expectMatchesPillow(name + ".png", within: 0)
    }

    @Test func alphaIsCompositedOntoBlackInSRGBValues() throws {
        // png-rgba's last pixel has alpha 128: its colour is halved (rounded), not blended in linear light
        // (which would give about 0.73 of it).
        let image = try ImageCodecs.read(path("png-rgba.png"))
        let source = try ImageCodecs.read(path("png-rgb.png"))
        let last = image.pixels.count - 3
        for c in 0..<3 {
            #expect(image.pixels[last + c] == ((source.pixels[last + c] * 128 + 127) / 255).rounded(.down))
        }
        // Alpha 0 (the first pixel) gives black, alpha 255 (the second) the colour as it is.
        #expect(Array(image.pixels[0..<3]) == [0, 0, 0])
        #expect(Array(image.pixels[3..<6]) == Array(source.pixels[3..<6]))
    }

    /// 16-bit samples are scaled to 8 bits by rounding v·255/65535. Pillow opens 16-bit grey losslessly (the
    /// reference PGM has maxval 65535, read here as v·255/65535), so within 0.5 of it means rounded exactly.
    @Test func sixteenBitGreyPNGRoundsPillowsSamples() throws {
        try expectMatchesPillow("png-grey16.png", within: 0.5, anyDiffer: true)
    }

    /// For 16-bit RGB(A) and grey+alpha Pillow keeps only the high byte (v >> 8, truncated), so it may differ from
    /// rounding by 1 level (measured: 1); the 16-bit source samples (.src/.alpha, maxval 65535) are matched
    /// exactly: round(v·255/65535), then the 8-bit composite.
    @Test(arguments: [("png-rgb16", false), ("png-rgba16", true), ("png-greyalpha16", true)])
    func sixteenBitColourPNGRoundsItsSamples(_ name: String, _ alpha: Bool) throws {
        let decoded = try ImageCodecs.read(path(name + ".png"))
        let grey = name.contains("grey")
        try expectMatchesPillow(name + ".png", within: 1, anyDiffer: true)
        let source = try ImageCodecs.read(path(name + (grey ? ".src.pgm" : ".src.ppm")))
        var expected = source.pixels.map { $0.rounded() }
        if alpha {
            let a = try ImageCodecs.read(path(name + ".alpha.pgm")).pixels.map { $0.rounded() }
            for i in expected.indices {
                expected[i] = ((expected[i] * a[i / source.channels] + 127) / 255).rounded(.down)
            }
        }
        let difference = zip(decoded.pixels, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(decoded.pixels == expected, "\(name): worst difference from the rounded source \(difference)")
    }

    // MARK: - WebP

    @Test(arguments: ["webp-lossless", "webp-lossless-alpha"])
    func losslessWebPMatchesPillowExactly(_ name: String) throws {
        try expectMatchesPillow(name + ".webp", within: 0)
    }

    /// Lossy WebP decoding is libwebp's fixed-point arithmetic (Debian's 1.2.4 here, Pillow 13's bundled 1.6):
    /// equal when measured; 1 level is allowed in case another libwebp rounds its upsampling differently.
    @Test(arguments: ["webp-lossy", "webp-lossy-alpha"])
    func lossyWebPMatchesPillow(_ name: String) throws {
        try expectMatchesPillow(name + ".webp", within: 1)
    }

    @Test func damagedAndOversizedWebPAreRefused() throws {
        let lossy = try bytes("webp-lossy.webp")
        #expect(imageError { try ImageCodecs.decode(Array(lossy.prefix(lossy.count / 2)), source: "half.webp") }
                == .truncated(path: "half.webp", format: "WebP"))
        #expect(imageError { try ImageCodecs.decode(Array(lossy.prefix(20)), source: "head.webp") }
                == .truncated(path: "head.webp", format: "WebP"))
        var scrambled = lossy
        for i in 30..<scrambled.count { scrambled[i] ^= 0x5A }
        let damaged = imageError { try ImageCodecs.decode(scrambled, source: "bad.webp") }
        #expect(damaged?.description.hasPrefix("bad.webp: ") == true && damaged?.description.contains("\n") == false,
                "\(String(describing: damaged))")

        // An extended header claiming a 100000x100000 canvas (libwebp would call it a bitstream error).
        func le24(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF)] }
        let huge = Array("RIFF".utf8) + [22, 0, 0, 0] + Array("WEBPVP8X".utf8) + [10, 0, 0, 0, 0, 0, 0, 0]
            + le24(99999) + le24(99999)
        #expect(imageError { try ImageCodecs.decode(huge, source: "huge.webp") }
                == .tooLarge(path: "huge.webp", width: 100000, height: 100000, limits: .default))
        // A plain lossless file over small limits: refused from its header.
        let small = InputLimits(maxWidth: 10)
        #expect(imageError { try ImageCodecs.read(path("webp-lossless.webp"), limits: small) }
                == .tooLarge(path: path("webp-lossless.webp"), width: 13, height: 7, limits: small))
        #expect(imageError { try ImageCodecs.read(path("webp-animated.webp")) }
                == .unsupported(path: path("webp-animated.webp"), detail: "animated WebP (only still images are read)"))
    }

    // MARK: - CMYK JPEG

    /// CMYK and YCCK JPEGs against Pillow's convert("RGB"): the inversion and arithmetic are Pillow's, so what
    /// remains is libjpeg-turbo's IDCT and upsampling (Debian's 2.1.5 here, Pillow 13's bundled 3.2): equal when
    /// measured; 1 level is allowed for other libjpeg versions (a wrong conversion is off by far more).
    /// Without the Adobe marker the samples are still read as inverted, as Pillow reads them.
    @Test(arguments: ["jpeg-cmyk", "jpeg-cmyk-noadobe", "jpeg-ycck"])
    func cmykJPEGMatchesPillow(_ name: String) throws {
        try expectMatchesPillow(name + ".jpg", within: 1)
    }

    // MARK: - EXIF orientation

    /// Each orientation against Pillow's `ImageOps.exif_transpose`; the coded pixels are the same in every file,
    /// so the JPEG decoding allowance is the same as for the CMYK files.
    @Test(arguments: (1...8).map { "exif-\($0)" } + ["exif-6-intel", "exif-corrupt"])
    func exifOrientationMatchesPillow(_ name: String) throws {
        try expectMatchesPillow(name + ".jpg", within: 1)
        let image = try ImageCodecs.read(path(name + ".jpg"))
        let turned = ["exif-5", "exif-6", "exif-7", "exif-8", "exif-6-intel"].contains(name)
        #expect(turned ? (image.width == 7 && image.height == 13) : (image.width == 13 && image.height == 7))
    }

    @Test func exifOrientationIsExactlyAFlipOrRotationOfTheStoredPixels() throws {
        let stored = try ImageCodecs.read(path("exif-1.jpg"))
        let pillowStored = try reference("exif-1.jpg")
        for n in 2...8 {
            let ours = try ImageCodecs.read(path("exif-\(n).jpg"))
            #expect(ours == stored.undoingEXIFOrientation(n), "orientation \(n)")
            // Pillow's transposition of its own decoding is the same function of its pixels.
            #expect(try reference("exif-\(n).jpg") == pillowStored.undoingEXIFOrientation(n), "orientation \(n)")
        }
    }

    /// Damaged EXIF data is ignored (the image as stored), never an error: the pixels are still good.
    @Test func damagedEXIFIsIgnored() throws {
        #expect(EXIF.orientation(inJPEG: try bytes("exif-corrupt.jpg")) == 1)
        #expect(EXIF.orientation(inJPEG: try bytes("exif-6.jpg")) == 6)
        #expect(EXIF.orientation(inJPEG: try bytes("exif-6-intel.jpg")) == 6)
        // A TIFF header with one Orientation entry (little-endian): the value, then damaged variants.
        func tiff(type: UInt8 = 3, count: UInt8 = 1, value: UInt8 = 6, entries: UInt8 = 1, ifd: UInt8 = 8) -> [UInt8] {
            [0x49, 0x49, 0x2A, 0, ifd, 0, 0, 0, entries, 0, 0x12, 0x01, type, 0, count, 0, 0, 0, value, 0, 0, 0, 0, 0]
        }
        #expect(EXIF.orientation(inTIFF: tiff()) == 6)
        #expect(EXIF.orientation(inTIFF: tiff(type: 4)) == 6)
        #expect(EXIF.orientation(inTIFF: tiff(value: 9)) == 1)
        #expect(EXIF.orientation(inTIFF: tiff(value: 0)) == 1)
        #expect(EXIF.orientation(inTIFF: tiff(type: 2)) == 1)
        #expect(EXIF.orientation(inTIFF: tiff(count: 2)) == 1)
        #expect(EXIF.orientation(inTIFF: tiff(entries: 200)) == 6)  // found before running off the end
        #expect(EXIF.orientation(inTIFF: Array(tiff().prefix(15))) == 1)
        #expect(EXIF.orientation(inTIFF: tiff(ifd: 250)) == 1)
        #expect(EXIF.orientation(inTIFF: [0x4D, 0x4D, 0, 0x2A]) == 1)
        // A segment whose length runs past the file, and one cut inside the TIFF data: decoding is unaffected.
        var jpeg = try bytes("exif-6.jpg")
        let app1 = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xE1 })
        #expect(EXIF.orientation(inJPEG: Array(jpeg.prefix(app1 + 20))) == 1)
        jpeg[app1 + 2] = 0xFF
        #expect(EXIF.orientation(inJPEG: jpeg) == 1)
    }

    /// Orientations 5-8 swap width and height: the limits apply to the image as shown.
    @Test func limitsApplyToTheImageAsShown() throws {
        let shown = InputLimits(maxWidth: 10, maxHeight: 20)
        let image = try ImageCodecs.read(path("exif-6.jpg"), limits: shown)
        #expect(image.width == 7 && image.height == 13)
        let stored = InputLimits(maxWidth: 20, maxHeight: 10)
        #expect(imageError { try ImageCodecs.read(path("exif-6.jpg"), limits: stored) }
                == .tooLarge(path: path("exif-6.jpg"), width: 7, height: 13, limits: stored))
        #expect(try ImageCodecs.read(path("exif-1.jpg"), limits: stored).width == 13)
    }

    /// YOLO reads a JPEG's size from its header without decoding it: as shown, like the decoder.
    @Test func yoloImageSizesAreThoseOfTheImageAsShown() throws {
        for name in ["exif-1.jpg", "exif-6.jpg", "exif-8.jpg", "webp-lossy-alpha.webp", "png-rgba16.png"] {
            let image = try ImageCodecs.read(path(name))
            let size = try YOLO.imageSize(path(name))
            #expect(size.width == image.width && size.height == image.height, "\(name): \(size)")
        }
    }

    /// Image folders and YOLO image folders pick up .webp files (and every other format read here).
    @Test func webpFilesArePickedUpByFolderReaders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("codecs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for folder in ["cls/a", "cls/b", "yolo/images", "yolo/labels"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true)
        }
        let files = ["webp-lossless.webp", "jpeg-ycck.jpg", "png-palette-trns.png"]
        for name in files {
            try FileManager.default.copyItem(atPath: path(name), toPath: dir + "/cls/a/" + name)
            try FileManager.default.copyItem(atPath: path(name), toPath: dir + "/cls/b/" + name)
            try FileManager.default.copyItem(atPath: path(name), toPath: dir + "/yolo/images/" + name)
            let label = (name as NSString).deletingPathExtension + ".txt"
            try Data("0 0.5 0.5 0.2 0.2\n".utf8).write(to: URL(fileURLWithPath: dir + "/yolo/labels/" + label))
        }
        let folder = try ImageFolder.load(dir + "/cls", pipeline: try ImagePipeline(spec: "scale"))
        #expect(folder.count == 6)
        let yolo = try YOLO.read(directory: dir + "/yolo", classNames: ["thing"])
        #expect(yolo.images.map(\.fileName).sorted() == files.sorted())
    }

    // MARK: - Empty and unknown

    @Test func zeroPixelImagesAreRefused() throws {
        // A PNG 0 pixels wide (IHDR's width zeroed; CRCs rewritten so that libpng reaches the size check).
        var png = try bytes("png-rgb.png")
        png.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        let pngError = imageError { try ImageCodecs.decode(fixPNGChecksums(png), source: "empty.png") }
        #expect(pngError?.description.hasPrefix("empty.png: corrupt PNG data: ") == true,
                "\(String(describing: pngError))")
        // A JPEG 0 rows high (the SOF0 segment's height zeroed).
        var jpeg = try bytes("exif-1.jpg")
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 7), with: [0, 0])
        let jpegError = imageError { try ImageCodecs.decode(jpeg, source: "empty.jpg") }
        #expect(jpegError?.description.hasPrefix("empty.jpg: corrupt JPEG data: ") == true,
                "\(String(describing: jpegError))")
        // A lossy WebP 0 pixels wide (the VP8 frame header's width, after its 3-byte tag and start code, zeroed;
        // lossless and extended files store size - 1 and cannot say 0).
        var webp = try bytes("webp-lossy.webp")
        #expect(Array(webp[12..<16]) == Array("VP8 ".utf8) && Array(webp[23..<26]) == [0x9D, 0x01, 0x2A])
        webp.replaceSubrange(26..<28, with: [0, 0])
        let webpError = imageError { try ImageCodecs.decode(webp, source: "empty.webp") }
        #expect(webpError?.description.hasPrefix("empty.webp: ") == true, "\(String(describing: webpError))")
        for error in [pngError, jpegError, webpError] { #expect(error?.description.contains("\n") == false) }
    }

    @Test func unknownBytesNameEveryFormat() {
        #expect(imageError { try ImageCodecs.decode(Array("GIF89a".utf8), source: "x.gif") }?.description
                == "x.gif: not a PNG, JPEG, WebP, PGM or PPM file")
    }
}
