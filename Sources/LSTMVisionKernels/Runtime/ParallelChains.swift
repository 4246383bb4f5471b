import Foundation
import Synchronization

extension Parallel {
    /// Splits `rows` batch rows into the chains `forChains` runs: blocks of 16 rows (32 from 128 rows on; under 32
    /// rows, two blocks of at least 8, else one), on multiples of 4 (SmallGEMM's row block).
    public static func chainBlocks(_ rows: Int) -> [Range<Int>] {
        let count = rows >= 128 ? rows / 32 : rows >= 32 ? rows / 16 : max(1, min(2, rows / 8))
        return (0..<count).map { c in
            (c * rows / count / 4 * 4)..<(c + 1 == count ? rows : (c + 1) * rows / count / 4 * 4)
        }
    }

    /// Runs `body(chain, step)` for every step in 0..<steps of every chain in 0..<chains, each chain's steps in order
    /// (a chain is a block of batch rows carried through time). Each thread takes a step of each of its own chains in
    /// turn; once they are done it takes over steps of the others' unfinished chains, so that a core slowed for a while
    /// by the virtual machine does not leave the other waiting at the end, as a fixed split of the rows would. A step
    /// runs on whichever thread claims it: what it computes must not depend on the thread.
    public static func forChains(_ chains: Int, steps: Int, threads: Int = Parallel.threads,
                                 _ body: (_ chain: Int, _ step: Int) -> Void) {
        let parts = min(threads, chains)
        guard parts > 1 else {
            for c in 0..<chains { for s in 0..<steps { body(c, s) } }
            return
        }
        // Each chain's progress: 2 × the steps done, plus 1 while a thread runs the next one.
        let progress = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: chains)
        for c in 0..<chains { (progress + c).initialize(to: Atomic(0)) }
        defer { progress.deinitialize(count: chains); progress.deallocate() }
        nonisolated(unsafe) let p = progress
        forParts(parts, parts: parts) { range in
            for me in range {
                let own = (me * chains / parts)..<((me + 1) * chains / parts)
                var turn = 0, idle = 0
                while true {
                    var unfinished = false, ran = false
                    for i in 0..<chains {   // own chains first, from this turn's on; then the others, from the end
                        let c = i < own.count ? own.lowerBound + (turn + i) % own.count
                            : (own.lowerBound + chains - 1 - (i - own.count)) % chains
                        let v = p[c].load(ordering: .acquiring)
                        guard v < 2 * steps else { continue }
                        unfinished = true
                        if v & 1 == 0
                            && p[c].compareExchange(expected: v, desired: v + 1, ordering: .acquiring).exchanged {
                            body(c, v / 2)
                            p[c].store(v + 2, ordering: .releasing)
                            ran = true
                            break
                        }
                    }
                    guard unfinished else { break }
                    if ran {
                        turn += 1
                        idle = 0
                    } else {   // the other thread runs what is left
                        idle += 1
                        if idle > 4000 { sched_yield() }
                    }
                }
            }
        }
    }
}
