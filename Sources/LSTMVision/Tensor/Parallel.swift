import Foundation
import Synchronization

/// Splits work over the machine's cores when it is large enough to pay for the threads.
public enum Parallel {
    /// The number of cores of this machine.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The number of threads parallel loops and matrix products use (default: every core; `--threads`).
    nonisolated(unsafe) public static var threads = cores

    /// Runs `body(range)` over `0..<n` in contiguous chunks, in parallel when `n >= minimum`.
    public static func forChunks(_ n: Int, minimum: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        forParts(n, parts: n >= minimum ? min(threads, n) : 1, body)
    }

    /// Splits `0..<rows` into one block per thread (when there are at least 8 rows per block) and
    /// runs `body` on each block concurrently; matrix products inside must pass `threads: 1`. Used for the
    /// LSTM time loop, where batch rows are independent.
    public static func forRowBlocks(_ rows: Int, threads: Int = Parallel.threads, _ body: (Range<Int>) -> Void) {
        forParts(rows, parts: rowBlocks(rows, threads: threads), body)
    }

    /// `forRowBlocks` for work whose results do not depend on how the rows are split (each row computed alone, as in
    /// LSTM inference). Two blocks in `Lockstep` share the rows in proportion to how fast each thread ran the
    /// earlier such regions, in multiples of 4 (SmallGEMM's row block): a virtual machine's two cores can differ in
    /// speed by a third for seconds at a time, and an equal split then waits for the slower one (measured, batch-64
    /// inference: 1.05× (1×128) and 1.07× (2×128-bi), median of 8 alternating runs).
    public static func forBalancedRowBlocks(_ rows: Int, threads: Int = Parallel.threads, _ body: (Range<Int>) -> Void) {
        guard rowBlocks(rows, threads: threads) == 2 && Lockstep.available else { forRowBlocks(rows, threads: threads, body); return }
        let ratio = Double(speedRatio.load(ordering: .relaxed)) / 1000   // part 0's speed over part 1's
        let quarter = max(4, rows / 4 / 4 * 4)
        let split = min(rows - quarter, max(quarter, Int((Double(rows) * ratio / (1 + ratio) / 4).rounded()) * 4))
        var nanoseconds = (UInt64(0), UInt64(0))
        let ran = withUnsafeMutablePointer(to: &nanoseconds) { ns in
            nonisolated(unsafe) let ns = ns
            return Lockstep.run { p in
                let start = DispatchTime.now().uptimeNanoseconds
                body(p == 0 ? 0..<split : split..<rows)
                let took = DispatchTime.now().uptimeNanoseconds - start
                if p == 0 { ns.pointee.0 = took } else { ns.pointee.1 = took }
            }
        }
        guard ran else { forRowBlocks(rows, threads: threads, body); return }
        // Regions of at least 50 µs update the estimate, a quarter of the way (in log scale) towards what this one measured.
        let (t0, t1) = (Double(nanoseconds.0), Double(nanoseconds.1))
        if min(t0, t1) > 50_000 {
            let measured = min(2, max(0.5, (Double(split) / t0) / (Double(rows - split) / t1)))
            let next = Foundation.exp(0.75 * Foundation.log(ratio) + 0.25 * Foundation.log(measured))
            speedRatio.store(Int((next * 1000).rounded()), ordering: .relaxed)
        }
    }

    /// The first thread's speed over the second's in `forBalancedRowBlocks` regions, ×1000 (smoothed).
    static let speedRatio = Atomic<Int>(1000)

    /// The number of blocks `forRowBlocks` splits `rows` into: one per thread, at least 8 rows each.
    public static func rowBlocks(_ rows: Int, threads: Int = Parallel.threads) -> Int {
        max(1, min(threads, rows / 8))
    }

    /// Copies `rows` rows of `width` floats, row r from `source + r·sourceStride` to `destination + r·destinationStride`,
    /// the rows shared among the threads when there are at least 2¹⁶ floats (a layer's outputs, a few MB, would otherwise
    /// leave the other cores waiting).
    public static func copyRows(_ rows: Int, width: Int, from source: UnsafePointer<Float>, stride sourceStride: Int,
                                to destination: UnsafeMutablePointer<Float>, stride destinationStride: Int) {
        nonisolated(unsafe) let (source, destination) = (source, destination)
        forParts(rows, parts: rows * width >= 1 << 16 ? min(rows, threads) : 1) { part in
            for r in part { (destination + r * destinationStride).update(from: source + r * sourceStride, count: width) }
        }
    }

    /// `copyRows` into a new array of `rows` × `width` floats.
    public static func copy(_ rows: Int, width: Int, from source: UnsafePointer<Float>, stride: Int) -> [Float] {
        var out = uninitializedFloats(rows * width)   // every row copied below
        out.withUnsafeMutableBufferPointer { o in copyRows(rows, width: width, from: source, stride: stride, to: o.baseAddress!, stride: width) }
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
        // (measured, batch-64 training: 1.06–1.14× the steps per second, median of 8 alternating runs). Dispatch
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
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * step, hi = min(n, lo + step)
                if lo < hi { body(p, lo..<hi) }
            }
        }
    }
}
