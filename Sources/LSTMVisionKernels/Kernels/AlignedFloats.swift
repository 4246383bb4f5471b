/// A fixed-size buffer of floats that starts on a cache line (64 bytes), for what the kernels read and write with
/// SIMD16 loads and stores: a packed B, an LSTM's gates and states. An array's storage starts 16 or 48 bytes past a
/// line, so there every such access would span two lines.
/// A class, so copies share one buffer; `withUnsafe…BufferPointer` keep it alive while the pointer is in use.
public final class AlignedFloats: RandomAccessCollection, Equatable, @unchecked Sendable {
    public let count: Int
    package let base: UnsafeMutablePointer<Float>

    /// `count` floats, uninitialised: the creator writes every one before reading it or sharing the buffer.
    package init(uninitializedCount count: Int) {
        self.count = count
        base = AlignedFloats.allocate(count)
    }
    /// A copy of `array`.
    package convenience init(_ array: [Float]) {
        self.init(uninitializedCount: array.count)
        if count > 0 { array.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: count) } }
    }
    package convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.update(repeating: value, count: count)
    }
    deinit { base.deallocate() }

    /// No floats: for a buffer that will not be used.
    public static let empty = AlignedFloats(uninitializedCount: 0)

    /// Scratch memory for `count` floats on a cache line, uninitialised; the caller frees it with `deallocate()`.
    package static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: Swift.max(count, 1))
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(i: Int) -> Float {
        precondition(i >= 0 && i < count, "AlignedFloats: index \(i) out of 0..<\(count)")
        return base[i]
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeBufferPointer(start: base, count: count)) }
    }
    public func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeMutableBufferPointer(start: base, count: count)) }
    }
    /// Elements `range` as an array (all of them by default).
    public func array(_ range: Range<Int>? = nil) -> [Float] {
        let r = range ?? 0..<count
        precondition(r.lowerBound >= 0 && r.upperBound <= count, "AlignedFloats: range \(r) out of 0..<\(count)")
        return withUnsafeBufferPointer { Array($0[r]) }
    }
    /// Copies `values` into elements `offset..<offset + values.count`.
    public func write(_ values: [Float], at offset: Int) {
        precondition(offset >= 0 && offset + values.count <= count,
                     "AlignedFloats: \(values.count) values at \(offset) out of 0..<\(count)")
        if !values.isEmpty {
            values.withUnsafeBufferPointer { (base + offset).update(from: $0.baseAddress!, count: values.count) }
        }
    }
    public static func == (a: AlignedFloats, b: AlignedFloats) -> Bool {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.elementsEqual(y) } }
    }
}
