import Foundation
import Synchronization

/// Two threads in lockstep: the caller and one persistent helper thread, meeting at a spin barrier. For work
/// split between the two cores that must synchronise far more often than a thread wake-up allows, such as
/// each time step of a batch-1 LSTM (about a microsecond of work per step), and for every two-part parallel
/// region (`Parallel.forIndexedParts`), which then starts without a wake-up. The helper is a dedicated thread,
/// not a dispatch worker, so that the barrier never waits for a thread that is not running; between jobs it
/// spins for a while (a wake-up costs tens of microseconds, as much as a whole batch-1 sequence) before it
/// sleeps, and it moves off the caller's core when the scheduler has put it there.
public enum Lockstep {
    /// True when there is a second core to run the helper on.
    public static var available: Bool { Parallel.cores >= 2 }

    /// Runs `body(0)` on the calling thread and `body(1)` on the helper, and returns true when both have finished.
    /// Each body must call `barrier()` the same number of times. One lockstep runs at a time: while another runs
    /// (this call comes from inside one, or from another thread), returns false at once, having run nothing, and
    /// the caller does the work another way. The helper runs with the caller's `Parallel.threads`.
    public static func run(_ body: (Int) -> Void) -> Bool {
        let s = shared
        guard s.exclusive.try() else { return false }
        s.jobThreads = Parallel.threads   // published to the helper by the release of `posted` below
        s.callerThread.store(pthread_self(), ordering: .relaxed)
        defer { s.callerThread.store(0, ordering: .relaxed); s.exclusive.unlock() }
        withoutActuallyEscaping(body) { body in
            s.job = body
            s.callerCore.store(Int(glibcSchedGetCPU()), ordering: .relaxed)
            let target = s.posted.add(1, ordering: .sequentiallyConsistent).newValue
            if s.sleeping.load(ordering: .sequentiallyConsistent) { s.wake.signal() }
            body(0)
            spin { s.finished.load(ordering: .acquiring) == target }
            s.job = nil
        }
        return true
    }

    /// True when called from a running lockstep's body, on the caller's thread or the helper's (the helper runs
    /// nothing else): there both threads are busy.
    public static var isInside: Bool {
        guard available else { return false }
        let s = shared, me = pthread_self()
        return me == s.helperThread.load(ordering: .relaxed) || me == s.callerThread.load(ordering: .relaxed)
    }

    /// Waits until both threads of the current `run` have arrived.
    public static func barrier() {
        let s = shared
        let generation = s.generation.load(ordering: .acquiring)
        if s.arrived.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
            s.arrived.store(0, ordering: .relaxed)
            s.generation.add(1, ordering: .releasing)
        } else {
            spin { s.generation.load(ordering: .acquiring) != generation }
        }
    }

    /// Spins until `done()`, yielding the core after the first few thousand tries.
    @inline(__always) package static func spin(_ done: () -> Bool) {
        var tries = 0
        while !done() {
            tries += 1
            if tries > 4000 { sched_yield() }
        }
    }

    package final class Shared: @unchecked Sendable {
        package let arrived = Atomic<Int>(0), generation = Atomic<Int>(0)
        /// Jobs posted by `run` and finished by the helper; whether the helper sleeps on `wake`; the caller's core.
        package let posted = Atomic<Int>(0), finished = Atomic<Int>(0), sleeping = Atomic<Bool>(false),
            callerCore = Atomic<Int>(-1)
        /// The threads of the running lockstep (`isInside`): the caller's while one runs (else 0), and the helper's.
        package let callerThread = Atomic<pthread_t>(0), helperThread = Atomic<pthread_t>(0)
        package let wake = DispatchSemaphore(value: 0)
        package let exclusive = NSLock()
        package nonisolated(unsafe) var job: ((Int) -> Void)?
        /// The caller's `Parallel.threads` for the posted job (a task-local value, which the helper thread lacks).
        package nonisolated(unsafe) var jobThreads = Parallel.cores
    }

    /// The shared state, and the helper thread started with it.
    package static let shared: Shared = {
        let s = Shared()
        let helper = Thread {
            s.helperThread.store(pthread_self(), ordering: .relaxed)
            var seen = 0
            while true {
                var tries = 0
                while s.posted.load(ordering: .acquiring) == seen {
                    tries += 1
                    guard tries > 200_000 else { continue }   // about 100 µs of spinning, then sleep
                    s.sleeping.store(true, ordering: .sequentiallyConsistent)
                    if s.posted.load(ordering: .sequentiallyConsistent) == seen { s.wake.wait() }
                    s.sleeping.store(false, ordering: .sequentiallyConsistent)
                    tries = 0
                }
                seen += 1
                let caller = s.callerCore.load(ordering: .relaxed)
                if caller >= 0 && Int(glibcSchedGetCPU()) == caller { runAnywhereBut(core: caller) }
                Parallel.withCallers(s.jobThreads) { s.job?(1) }
                s.finished.add(1, ordering: .releasing)
            }
        }
        helper.name = "lstmvision.lockstep"
        helper.start()
        return s
    }()

    /// Restricts the calling thread to every core but `core` (the kernel moves it at once).
    package static func runAnywhereBut(core: Int) {
        var mask = [UInt64](repeating: 0, count: 16)   // 1,024 cores
        for c in 0..<min(Parallel.cores, 1024) where c != core { mask[c / 64] |= 1 << UInt64(c % 64) }
        _ = mask.withUnsafeBytes { glibcSchedSetAffinity(0, $0.count, $0.baseAddress!) }
    }
}

/// glibc's `sched_getcpu` and `sched_setaffinity` (not part of Swift's Glibc module).
@_silgen_name("sched_getcpu")
private func glibcSchedGetCPU() -> Int32
@_silgen_name("sched_setaffinity")
private func glibcSchedSetAffinity(_ pid: Int32, _ size: Int, _ mask: UnsafeRawPointer) -> Int32
