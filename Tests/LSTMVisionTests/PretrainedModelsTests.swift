import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The models under models/ load by name and give the figures models/README.md publishes for them.
@Suite struct PretrainedModelsTests {
    let cli = CLITests()

    /// Name and the accuracy on the first 500 MNIST test images that models/README.md publishes (a debug build
    /// takes about a minute per 1,000 images; the whole test split is re-scored with the release build).
    static let classifiers: [(String, Double)] = [("row-1x128", 0.988)]

    @Test(arguments: classifiers)
    func classifierRescoresItsPublishedTestAccuracy(_ name: String, _ published: Double) throws {
        let r = try cli.run(["eval", "--model", name, "--limit", "500", "--json"])
        #expect(r.code == 0, "\(r.err)")
        let e = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(e["count"] as? Int == 500)
        // Within one image: the figure was measured by a release build, whose sums may round differently.
        let accuracy = try #require(e["accuracy"] as? Double)
        #expect(abs(accuracy - published) <= 2.0001e-3, "\(name): \(accuracy), published \(published)")
    }

    @Test func modelsListsAndPredictTakesANameAndAnyImage() throws {
        let list = try cli.run(["models"])
        #expect(list.code == 0 && list.out.contains("row-1x128: row classifier 28×28×1, hidden 128"), "\(list.out)")
        // An MNIST test digit (a 7), written larger and in colour: the model's preprocessing makes it 28×28 grey.
        let test = try MNIST.load(directory: CLITests.root + "/data/mnist", split: .test).prefix(1)
        var big = test.image(0).scaled(by: 255).resized(width: 84, height: 84)
        big = Image(width: 84, height: 84, channels: 3, pixels: big.pixels.flatMap { [$0, $0, $0] })
        let file = CLITests.tempFile("seven.png", Data())
        try ImageCodecs.writePNG(big, to: file)
        let r = try cli.run(["predict", "--model", "row-1x128", file])
        #expect(r.code == 0 && r.out.hasPrefix(file + ": 7 "), "\(r.out) \(r.err)")
        let missing = try cli.run(["predict", "--model", "row-9x9", file])
        #expect(missing.code != 0 && missing.err.contains("row-9x9: no such model file, nor a model of that name"))
    }
}
