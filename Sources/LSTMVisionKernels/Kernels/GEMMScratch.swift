import Foundation

/// Each thread's packing buffers for `BlockedGEMM`, kept between calls and grown when a product needs more, so the
/// hot path allocates nothing: thread-specific data, freed when its thread exits.
final class GEMMScratch {
    private var a = AlignedFloats.allocate(0), aCount = 0
    private var b = AlignedFloats.allocate(0), bCount = 0

    deinit { a.deallocate(); b.deallocate() }

    /// Buffers of at least `a` and `b` floats (contents unspecified).
    func buffers(a na: Int, b nb: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        if na > aCount { a.deallocate(); a = AlignedFloats.allocate(na); aCount = na }
        if nb > bCount { b.deallocate(); b = AlignedFloats.allocate(nb); bCount = nb }
        return (a, b)
    }

    /// The key of the thread-specific slot; its destructor releases the thread's scratch.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in if let p { Unmanaged<GEMMScratch>.fromOpaque(p).release() } }
        return key
    }()

    /// The calling thread's scratch, created on first use.
    static var current: GEMMScratch {
        if let p = pthread_getspecific(key) { return Unmanaged<GEMMScratch>.fromOpaque(p).takeUnretainedValue() }
        let s = GEMMScratch()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }
}
