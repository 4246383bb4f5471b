import Foundation

/// Splits work over the machine's cores when it is large enough to pay for the threads.
public enum Parallel {
    /// The number of cores of this machine.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The number of threads parallel loops and matrix products use: every core, unless the caller runs inside
    /// `withThreads` (the CLI's `--threads`). A task-local value, so it is scoped to the caller; the parallel regions
    /// hand the caller's value on to their helper threads (`withCallers`), which raw threads would not see.
    @TaskLocal public static var threads = cores

    /// Runs `body` with `threads` set to `n` (at least 1) for it and everything it calls, on this thread.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        try $threads.withValue(max(1, n), operation: body)
    }

    /// Runs `work`, on a helper thread of a region, with the caller's `threads` (`callers`, read on the calling
    /// thread): as it is when that is the default, which a thread outside any `withThreads` reads anyway.
    @inline(__always) package static func withCallers(_ callers: Int, _ work: () -> Void) {
        if callers == cores { work() } else { $threads.withValue(callers, operation: work) }
    }

    /// Runs `body(range)` over `0..<n` in contiguous chunks, in parallel when `n >= minimum`.
    public static func forChunks(_ n: Int, minimum: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        forItems(n, size: 1, minimum: minimum, body)
    }

    /// Runs `body(range)` over `0..<n` items of `size` floats each in contiguous parts, one per thread (of `threads`)
    /// once there are at least `minimum` floats in all, where a two-thread region pays for itself; else here, at once.
    public static func forItems(_ n: Int, size: Int, minimum: Int = 1 << 15, threads: Int = Parallel.threads,
                                _ body: (Range<Int>) -> Void) {
        forParts(n, parts: n * size >= minimum ? min(threads, n) : 1, body)
    }

    /// The number of blocks to split `rows` batch rows into: one per thread, at least 8 rows each.
    public static func rowBlocks(_ rows: Int, threads: Int = Parallel.threads) -> Int {
        max(1, min(threads, rows / 8))
    }

    /// Copies `rows` rows of `width` floats, row r from `source + r·sourceStride` to
    /// `destination + r·destinationStride`, the rows shared among the threads when there are at least 2¹⁶ floats
    /// (a layer's outputs, a few MB, would otherwise leave the other cores waiting).
    public static func copyRows(_ rows: Int, width: Int, from source: UnsafePointer<Float>, stride sourceStride: Int,
                                to destination: UnsafeMutablePointer<Float>, stride destinationStride: Int) {
        nonisolated(unsafe) let (source, destination) = (source, destination)
        forItems(rows, size: width, minimum: 1 << 16) { part in
            for r in part {
                (destination + r * destinationStride).update(from: source + r * sourceStride, count: width)
            }
        }
    }

    /// `copyRows` into a new array of `rows` × `width` floats.
    public static func copy(_ rows: Int, width: Int, from source: UnsafePointer<Float>, stride: Int) -> [Float] {
        var out = uninitializedFloats(rows * width)   // every row copied below
        out.withUnsafeMutableBufferPointer { o in
            copyRows(rows, width: width, from: source, stride: stride, to: o.baseAddress!, stride: width)
        }
        return out
    }

    /// Runs `body` on `parts` contiguous, near-equal ranges of `0..<n` concurrently.
    public static func forParts(_ n: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        forIndexedParts(n, parts: parts) { _, range in body(range) }
    }

    /// `forParts` that also passes each part's index.
    public static func forIndexedParts(_ n: Int, parts: Int, _ body: (Int, Range<Int>) -> Void) {
        if parts <= 1 { body(0, 0..<n); return }
        let step = (n + parts - 1) / parts
        // Two parts run in `Lockstep`, whose helper is still spinning from the last region when regions follow each
        // other closely (a training step's forward, backward and optimiser), where a dispatch worker must be woken
        // (the gain is in docs/performance.md). Dispatch
        // takes over when another thread holds the lockstep, and for more parts. Called from inside a lockstep's part
        // (a bidirectional layer's direction packing its weights) with two threads, where both are busy, the parts run
        // here one after the other rather than on a dispatch worker that would share a core with them.
        if parts == 2 && Lockstep.available {
            if Lockstep.run({ p in body(p, (p * step)..<min(n, (p + 1) * step)) }) { return }
            if threads <= 2 && Lockstep.isInside {
                for p in 0..<2 { body(p, (p * step)..<min(n, (p + 1) * step)) }
                return
            }
        }
        let callers = threads
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * step, hi = min(n, lo + step)
                if lo < hi { withCallers(callers) { body(p, lo..<hi) } }
            }
        }
    }
}
