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
        let names = dataset.classNames.count == k ? dataset.classNames : (0..<k).map(String.init)
        return Evaluation(confusion: confusion, lossSum: lossSum, classNames: names)
    }

    /// The figures of a confusion matrix (confusion[true][predicted]) and the sum of the images' losses: what parts
    /// of a dataset scored apart (the ranks of a distributed run) add up to.
    public init(confusion: [[Int]], lossSum: Double, classNames: [String]) {
        let k = confusion.count, count = confusion.reduce(0) { $0 + $1.reduce(0, +) }
        let correct = (0..<k).reduce(0) { $0 + confusion[$1][$1] }
        precision = (0..<k).map { c -> Double in
            let col = (0..<k).reduce(0) { $0 + confusion[$1][c] }
            return col == 0 ? 0 : Double(confusion[c][c]) / Double(col)
        }
        recall = (0..<k).map { c -> Double in
            let row = confusion[c].reduce(0, +)
            return row == 0 ? 0 : Double(confusion[c][c]) / Double(row)
        }
        self.count = count
        accuracy = count == 0 ? 0 : Double(correct) / Double(count)
        loss = count == 0 ? 0 : lossSum / Double(count)
        self.confusion = confusion
        self.classNames = classNames
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
