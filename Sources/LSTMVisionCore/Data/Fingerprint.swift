/// A 64-bit FNV-1a hash of a dataset's contents (sizes, pixel bit patterns, labels or boxes), stored in
/// training checkpoints so that `resume` can refuse to continue on other data than the run began with:
/// exact resumption needs the very same training images in the very same order.
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    /// A fingerprint begun with a set of images: their size, class count and pixels (both dataset kinds start so).
    init(height: Int, width: Int, channels: Int, classes: Int, pixels: [Float]) {
        for n in [height, width, channels, classes] { add(n) }
        add(pixels)
    }

    /// FNV-1a over the low `bytes` bytes of `x`, least significant first.
    @inline(__always) private static func mix(_ h: inout UInt64, _ x: UInt64, bytes: Int) {
        var v = x
        for _ in 0..<bytes {
            h = (h ^ (v & 0xFF)) &* 0x0000_0100_0000_01B3
            v >>= 8
        }
    }

    /// Mixes in the 8 bytes of `x`.
    public mutating func add(_ x: UInt64) { Self.mix(&value, x, bytes: 8) }

    /// Mixes in an integer.
    public mutating func add(_ x: Int) { add(UInt64(bitPattern: Int64(x))) }

    /// Mixes in every value's bit pattern, 4 bytes at a time.
    public mutating func add(_ values: [Float]) {
        add(values.count)
        values.withUnsafeBufferPointer { p in
            var h = value
            for x in p { Self.mix(&h, UInt64(x.bitPattern), bytes: 4) }
            value = h
        }
    }

    /// The hash as 16 hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
