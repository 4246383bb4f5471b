import Foundation

/// A live progress line (bar, loss, accuracy, images/s, ETA) redrawn in place on a terminal;
/// when output is not a terminal it prints a plain line at every tenth of the epoch instead.
public final class ProgressBar {
    let total: Int
    let label: String
    let isTerminal: Bool
    let start = Date()
    var lastDraw = Date.distantPast
    var lastDecile = -1

    public init(total: Int, label: String, isTerminal: Bool = isatty(STDOUT_FILENO) != 0) {
        self.total = total
        self.label = label
        self.isTerminal = isTerminal
    }

    /// Reports `done` of `total` steps with the running figures (`accuracy` nil for a task that counts no hits, as
    /// frame prediction). Called every training step: the line is formatted only when one is drawn (formatting costs
    /// about 1% of a small training step).
    public func update(done: Int, loss: Double, accuracy: Double?, images: Int) {
        let now = Date()
        func figures() -> String {
            let elapsed = now.timeIntervalSince(start)
            let rate = elapsed > 0 ? Double(images) / elapsed : 0
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let hits = accuracy.map { String(format: "  acc %.2f%%", $0 * 100) } ?? ""
            return String(format: "loss %.4f%@  %.0f img/s  ETA %@", loss, hits, rate, Self.clock(eta))
        }
        if isTerminal {
            guard done == total || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            let width = 24, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            print("\r\(label) \(bar) \(done)/\(total)  \(figures())\u{1B}[K", terminator: done == total ? "\n" : "")
            fflush(nil)
        } else {
            let decile = total > 0 ? 10 * done / total : 10
            guard decile != lastDecile, decile > 0 || done == total else { return }
            lastDecile = decile
            print("\(label) \(done)/\(total)  \(figures())")
            fflush(nil)
        }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
                         : String(format: "%d:%02d", t / 60, t % 60)
    }
}
