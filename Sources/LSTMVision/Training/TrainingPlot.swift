/// Draws the training curves into one PNG: loss (training and validation) above a second chart of the
/// task's quality measure (accuracy for classification, AP for detection), both 640×300.
enum TrainingPlot {
    static func write(trainLoss: [Double], validationLoss: [Double], lowerTitle: String,
                      lower: [(name: String, values: [Double])], to path: String) throws {
        let loss = Plot.lineChart(series: [("train loss", trainLoss.map { Float($0) }),
                                           ("validation loss", validationLoss.map { Float($0) })],
                                  title: "Loss", width: 640, height: 300)
        let quality = Plot.lineChart(series: lower.map { ($0.name, $0.values.map { Float($0) }) },
                                     title: lowerTitle, width: 640, height: 300)
        // HWC rows stack by concatenation.
        let both = Image(width: 640, height: 600, channels: 3, pixels: loss.pixels + quality.pixels)
        try ImageCodecs.writePNG(both, to: path)
    }
}
