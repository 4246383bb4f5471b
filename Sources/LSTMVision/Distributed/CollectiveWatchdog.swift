import Foundation
import Synchronization

/// Watches the collectives of a rank: when one has waited longer than `timeout` seconds for the other ranks (one
/// is hung, stopped or unreachable), `onTimeout` runs on the watchdog's own thread with the call's name and the
/// seconds waited; `MPICommunicator` then ends the job with one error. The thread wakes every tenth of the timeout
/// (at most every 0.1 s) and counts only the time it ran: a process that was itself stopped (SIGSTOP) and is
/// continued does not blame the others for its own pause.
public final class CollectiveWatchdog: @unchecked Sendable {
    /// The collective in flight: its sequence number, 0 when none.
    private let inFlight = Atomic<Int>(0)
    private var sequence = 0
    private let name = Mutex<String>("")
    /// The timeout in nanoseconds; 0 watches nothing.
    private let timeoutNanoseconds = Atomic<UInt64>(0)
    private let started = Atomic<Bool>(false)
    private let onTimeout: @Sendable (_ call: String, _ seconds: Double) -> Void

    public init(onTimeout: @escaping @Sendable (_ call: String, _ seconds: Double) -> Void) {
        self.onTimeout = onTimeout
    }

    /// Seconds a collective may wait (nil: forever). Setting one starts the watchdog's thread.
    public var timeout: Double? {
        get {
            let n = timeoutNanoseconds.load(ordering: .relaxed)
            return n == 0 ? nil : Double(n) / 1e9
        }
        set {
            let seconds = newValue.map { $0.isFinite && $0 > 0 ? min($0, 1e9) : 0 } ?? 0
            timeoutNanoseconds.store(UInt64(seconds * 1e9), ordering: .relaxed)
            guard seconds > 0, started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
            else { return }
            let thread = Thread { [self] in loop() }
            thread.name = "collective watchdog"
            thread.start()
        }
    }

    /// Runs the collective `body`, named `call`, under watch. Called from one thread at a time.
    public func watch<T>(_ call: String, _ body: () throws -> T) rethrows -> T {
        sequence += 1
        name.withLock { $0 = call }
        inFlight.store(sequence, ordering: .sequentiallyConsistent)
        defer { inFlight.store(0, ordering: .sequentiallyConsistent) }
        return try body()
    }

    /// The watchdog's loop: the time the same collective has been in flight, counted in ticks it ran.
    private func loop() {
        var seen = 0, waited = 0.0, last = DispatchTime.now().uptimeNanoseconds
        while true {
            let limit = Double(timeoutNanoseconds.load(ordering: .relaxed)) / 1e9
            let tick = limit > 0 ? min(0.1, limit / 10) : 0.5
            usleep(UInt32(tick * 1e6))
            let now = DispatchTime.now().uptimeNanoseconds
            // A longer gap than two ticks is time this process did not run (stopped, or starved): one tick of it.
            let ran = min(Double(now - last) / 1e9, 2 * tick)
            last = now
            let current = inFlight.load(ordering: .sequentiallyConsistent)
            guard current != 0, current == seen else {
                (seen, waited) = (current, 0)
                continue
            }
            waited += ran
            if limit > 0 && waited > limit {
                onTimeout(name.withLock { $0 }, waited)
                return
            }
        }
    }
}
