/// Draws the training curves into one PNG: loss (training and validation) above accuracy.
enum TrainingPlot {
    static func write(_ history: [Trainer.EpochRecord], to path: String) throws {
        let loss = Plot.lineChart(series: [("train loss", history.map { Float($0.trainLoss) }),
                                           ("validation loss", history.map { Float($0.validationLoss) })],
                                  title: "Loss", width: 640, height: 300)
        let accuracy = Plot.lineChart(series: [("train accuracy %", history.map { Float($0.trainAccuracy * 100) }),
                                               ("validation accuracy %", history.map { Float($0.validationAccuracy * 100) })],
                                      title: "Accuracy", width: 640, height: 300)
        // HWC rows stack by concatenation.
        let both = Image(width: 640, height: 600, channels: 3, pixels: loss.pixels + accuracy.pixels)
        try ImageCodecs.writePNG(both, to: path)
    }
}
