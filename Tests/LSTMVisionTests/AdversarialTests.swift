import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// FGSM and PGD stay inside the ε-ball and the pixel range, lower accuracy, and adversarial training helps.
@Suite struct AdversarialTests {
    func trained(adversarial: Attack.Method?) throws -> any Classifier {
        let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 12, classes: 4)
        let model = try makeClassifier(config, seed: 3)
        var o = TrainingOptions()
        o.epochs = 6
        o.batchSize = 16
        o.learningRate = 1e-2
        o.warmupSteps = 5
        var settings = ClassificationTask.Settings()
        settings.adversarial = adversarial
        settings.adversarialEpsilon = 0.3
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adv-\(UUID().uuidString)").path
        let t = try Trainer<ClassificationTask>(model: model, options: o, settings: settings,
                                                train: TrainingTests.bars(320, seed: 1), validation: nil,
                                                directory: dir)
        t.quiet = true
        try t.run()
        try? FileManager.default.removeItem(atPath: dir)
        return model
    }

    @Test func attacksStayInTheBallAndHurt() throws {
        let model = try trained(adversarial: nil)
        let data = TrainingTests.bars(64, seed: 5)
        let (x, y) = data.batch(0..<64)
        var g = SeededGenerator(seed: 1)
        for attack in [Attack(method: .fgsm, epsilon: 0.3), Attack(method: .pgd, epsilon: 0.3, steps: 5)] {
            let adv = attack.perturb(model, x, labels: y, generator: &g)
            #expect(adv.maxAbsDifference(x) <= 0.3 + 1e-6)
            #expect(adv.maxAbsDifference(x) > 0.29)
            #expect(adv.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
            let r = attack.evaluate(model, on: data)
            print("  \(attack.method): clean \(r.clean), robust \(r.robust)")
            #expect(r.clean > 0.9)
            #expect(r.robust < r.clean - 0.2)
        }
        #expect(Attack(method: .pgd, epsilon: 0).perturb(model, x, labels: y, generator: &g) == x)
    }

    @Test func adversarialTrainingRaisesRobustAccuracy() throws {
        let plain = try trained(adversarial: nil), hardened = try trained(adversarial: .pgd)
        let data = TrainingTests.bars(200, seed: 7)
        let attack = Attack(method: .fgsm, epsilon: 0.3)
        let a = attack.evaluate(plain, on: data), b = attack.evaluate(hardened, on: data)
        print("  plain: \(a), adversarially trained: \(b)")
        #expect(b.robust > a.robust + 0.1)
        #expect(b.clean > 0.85)
    }
}
