import Foundation

/// What a search shows of its study: the table of trials (trials.csv; the same rows as JSON), and the pictures
/// (best-so-far against compute, each hyperparameter against the metric), drawn with `Plot`.
public enum TuningReport {
    /// One trial as the table shows it.
    public struct Row: Codable, Sendable, Equatable {
        public let trial: Int
        public let state: String
        public let params: [String: ParameterValue]
        public let epochs: Int
        public let best: Double?
        public let bestEpoch: Int?
        public let last: Double?
        public let seconds: Double
        public let message: String?
        /// The MPI rank that ran it (nil in a search of one process).
        public var rank: Int?

        enum CodingKeys: String, CodingKey {
            case trial, state, params, epochs, best, last, seconds, message, rank, bestEpoch = "best_epoch"
        }
    }

    /// The table's rows, in trial order.
    public static func rows(_ study: Study) -> [Row] {
        study.trials.map { t in
            let best = t.best(higherIsBetter: study.settings.higherIsBetter)
            return Row(trial: t.number, state: t.state.rawValue, params: t.params, epochs: t.metrics.count,
                       best: best?.value, bestEpoch: best?.epoch, last: t.metrics.last,
                       seconds: (t.seconds * 10).rounded() / 10, message: t.message, rank: t.rank)
        }
    }

    /// trials.csv: trial, state, one column per parameter, epochs, best_<metric>, best_epoch, last_<metric>,
    /// seconds, message (quoted where it holds a comma or a quote), and rank when a trial ran under MPI.
    public static func csv(_ study: Study) -> String {
        let names = study.settings.space.parameters.map(\.name), m = study.settings.metric
        let ranked = study.trials.contains { $0.rank != nil }
        var text = (["trial", "state"] + names + ["epochs", "best_" + m, "best_epoch", "last_" + m, "seconds",
                                                  "message"] + (ranked ? ["rank"] : [])).joined(separator: ",") + "\n"
        func quoted(_ s: String) -> String {
            s.contains(",") || s.contains("\"") || s.contains("\n")
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        for r in rows(study) {
            var fields: [String] = [String(r.trial), r.state]
            for name in names { fields.append(r.params[name].map { quoted($0.description) } ?? "") }
            let best: String = r.best.map { "\($0)" } ?? "", last: String = r.last.map { "\($0)" } ?? ""
            let bestEpoch: String = r.bestEpoch.map { String($0) } ?? ""
            fields += [String(r.epochs), best, bestEpoch, last, String(format: "%.1f", r.seconds)]
            fields.append(quoted(r.message ?? ""))
            if ranked { fields.append(r.rank.map(String.init) ?? "") }
            text += fields.joined(separator: ",") + "\n"
        }
        return text
    }

    /// The best completed trial's metric after each training epoch of the whole search (nan before the first).
    public static func bestSoFar(_ study: Study) -> [Double] {
        let up = study.settings.higherIsBetter
        let ends = study.trials.compactMap { t -> (Int, Double)? in
            guard t.state == .completed, let at = t.searchEpochsAtEnd, let b = t.best(higherIsBetter: up) else {
                return nil
            }
            return (at, b.value)
        }
        return (0..<max(study.epochsRun, 1)).map { e in
            let done = ends.filter { $0.0 <= e + 1 }.map(\.1)
            return done.isEmpty ? .nan : (up ? done.max()! : done.min()!)
        }
    }

    /// Writes trials.csv, progress.png (best so far against epochs) and one PNG per parameter into `out`.
    public static func write(_ study: Study, to out: String) throws {
        try AtomicFile.write(Data(csv(study).utf8), to: out + "/trials.csv")
        let m = study.settings.metric
        let progress = Plot.lineChart(series: [("best completed trial", bestSoFar(study).map { Float($0) })],
                                      title: "Best \(m) so far", xLabel: "training epochs, all trials",
                                      width: 640, height: 400)
        try ImageCodecs.writePNG(progress, to: out + "/progress.png")
        let up = study.settings.higherIsBetter
        for p in study.settings.space.parameters {
            var groups: [(name: String, points: [(x: Double, y: Double)])] = []
            var xLabel = p.name + (p.isLog ? " (log scale)" : "")
            var choices: [ParameterValue] = []
            if case let .choice(c) = p.domain {
                choices = c
                xLabel = p.name + ": " + c.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: " ")
            }
            for state in [Trial.State.completed, .pruned] {
                let points = study.trials.filter { $0.state == state }.compactMap { t -> (x: Double, y: Double)? in
                    guard let v = t.params[p.name], let b = t.best(higherIsBetter: up) else { return nil }
                    let x = choices.isEmpty ? v.number : choices.firstIndex(of: v).map(Double.init)
                    return x.map { ($0, b.value) }
                }
                groups.append((state.rawValue, points))
            }
            let chart = Plot.scatterChart(groups: groups, title: "\(m) (best epoch) against \(p.name)",
                                          xLabel: xLabel, logX: p.isLog, width: 640, height: 400)
            try ImageCodecs.writePNG(chart, to: out + "/param-\(p.name).png")
        }
    }
}
