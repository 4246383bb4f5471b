import Foundation

/// Classification quality on a dataset: accuracy, confusion matrix, per-class precision and recall.
public struct Evaluation: Sendable, Codable {
    public let count: Int
    public let accuracy: Double
    public let loss: Double
    /// confusion[true][predicted].
    public let confusion: [[Int]]
    public let precision: [Double]
    public let recall: [Double]
    public let classNames: [String]

    /// Runs `model` over `dataset` in batches without gradients.
    public static func run(_ model: any Classifier, on dataset: ImageDataset, batchSize: Int = 256) -> Evaluation {
        let k = model.config.classes
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var lossSum = 0.0
        let wasTraining = model.training
        model.training = false
        defer { model.training = wasTraining }
        var start = 0
        while start < dataset.count {
            let end = min(dataset.count, start + batchSize)
            let (x, y) = dataset.batch(start..<end)
            let logits = Autograd.withoutGradients { model(Variable(x)) }
            lossSum += Double(crossEntropy(logits, labels: y).value.scalar) * Double(end - start)
            for (p, t) in zip(logits.value.argmaxRows(), y) { confusion[t][p] += 1 }
            start = end
        }
        let correct = (0..<k).reduce(0) { $0 + confusion[$1][$1] }
        let precision = (0..<k).map { c -> Double in
            let col = (0..<k).reduce(0) { $0 + confusion[$1][c] }
            return col == 0 ? 0 : Double(confusion[c][c]) / Double(col)
        }
        let recall = (0..<k).map { c -> Double in
            let row = confusion[c].reduce(0, +)
            return row == 0 ? 0 : Double(confusion[c][c]) / Double(row)
        }
        let names = dataset.classNames.count == k ? dataset.classNames : (0..<k).map(String.init)
        return Evaluation(count: dataset.count,
                          accuracy: dataset.count == 0 ? 0 : Double(correct) / Double(dataset.count),
                          loss: dataset.count == 0 ? 0 : lossSum / Double(dataset.count),
                          confusion: confusion, precision: precision, recall: recall, classNames: names)
    }

    /// A human-readable report: accuracy, per-class precision/recall and the confusion matrix.
    public func report() -> String {
        var s = String(format: "accuracy %.2f%% (%d images), loss %.4f\n", accuracy * 100, count, loss)
        s += "class   precision  recall\n"
        for (i, n) in classNames.enumerated() {
            s += String(format: "%-7@ %8.2f%% %7.2f%%\n", n as NSString, precision[i] * 100, recall[i] * 100)
        }
        s += "confusion matrix (rows: true, columns: predicted)\n"
        s += "       " + classNames.map { $0.padding(toLength: 6, withPad: " ", startingAt: 0) }.joined() + "\n"
        for (i, row) in confusion.enumerated() {
            s += classNames[i].padding(toLength: 7, withPad: " ", startingAt: 0)
            s += row.map { String($0).padding(toLength: 6, withPad: " ", startingAt: 0) }.joined() + "\n"
        }
        return s
    }
}
