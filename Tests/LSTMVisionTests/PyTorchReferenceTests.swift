import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Compares LSTMVision with tensors PyTorch computed (fixtures from `tools/make_reference.py`):
/// outputs to 1e-5, gradients to 1e-4, printing the largest difference of each.
@Suite struct PyTorchReferenceTests {
    @Test(arguments: ["lstm_1layer", "lstm_2layer_bi", "lstm_odd", "lstm_3layer"])
    func lstmForwardAndBackward(_ name: String) throws {
        print("\(name):")
        let (t, meta) = try fixture("\(name).safetensors")
        let input = try #require(t["input"])
        var g = SeededGenerator(seed: 0)
        let lstm = LSTM(inputSize: Int(meta["input_size"]!)!, hiddenSize: Int(meta["hidden_size"]!)!,
                        numLayers: Int(meta["num_layers"]!)!, bidirectional: meta["bidirectional"] == "true",
                        generator: &g)
        let params = Dictionary(uniqueKeysWithValues: t.filter { $0.key.hasPrefix("param.") }.map {
            (String($0.key.dropFirst(6)), $0.value)
        })
        try lstm.loadStateDict(params)
        let x = Variable(input, requiresGrad: true)
        var state: (h: Variable, c: Variable)?
        if meta["has_initial_state"] == "true" {
            state = (Variable(t["h0"]!, requiresGrad: true), Variable(t["c0"]!, requiresGrad: true))
        }
        let (out, h, c) = lstm(x, initialState: state)
        expectClose(out.value, t["output"], 1e-5, "output")
        expectClose(h.value, t["h_n"], 1e-5, "h_n")
        expectClose(c.value, t["c_n"], 1e-5, "c_n")
        let loss = (out * Variable(t["loss_weight.output"]!)).sum() + (h * Variable(t["loss_weight.h_n"]!)).sum()
            + (c * Variable(t["loss_weight.c_n"]!)).sum()
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-4, "loss")
        loss.backward()
        expectClose(x.grad!, t["grad.input"], 1e-4, "grad input")
        if let state {
            expectClose(state.h.grad!, t["grad.h0"], 1e-4, "grad h0")
            expectClose(state.c.grad!, t["grad.c0"], 1e-4, "grad c0")
        }
        for (pname, p) in lstm.namedParameters { expectClose(p.grad!, t["grad.param.\(pname)"], 1e-4, "grad \(pname)") }
    }

    /// `finalStates` (no outputs built) gives PyTorch's h_n and c_n, and the same values and gradients, bit for bit,
    /// as `callAsFunction` when only the final states enter the loss.
    @Test(arguments: ["lstm_1layer", "lstm_2layer_bi", "lstm_odd", "lstm_3layer"])
    func finalStatesWithoutOutputs(_ name: String) throws {
        let (t, meta) = try fixture("\(name).safetensors")
        var g = SeededGenerator(seed: 0)
        let lstm = LSTM(inputSize: Int(meta["input_size"]!)!, hiddenSize: Int(meta["hidden_size"]!)!,
                        numLayers: Int(meta["num_layers"]!)!, bidirectional: meta["bidirectional"] == "true",
                        generator: &g)
        try lstm.loadStateDict(Dictionary(uniqueKeysWithValues: t.filter { $0.key.hasPrefix("param.") }.map {
            (String($0.key.dropFirst(6)), $0.value)
        }))
        var runs: [(h: Tensor, c: Tensor, grads: [Tensor])] = []
        for final in [false, true] {
            lstm.zeroGrad()
            let x = Variable(try #require(t["input"]), requiresGrad: true)
            let (h, c) = final ? lstm.finalStates(x) : { let r = lstm(x); return (r.h, r.c) }()
            if meta["has_initial_state"] != "true" {
                expectClose(h.value, t["h_n"], 1e-5, "h_n")
                expectClose(c.value, t["c_n"], 1e-5, "c_n")
            }
            ((h * Variable(t["loss_weight.h_n"]!)).sum() + (c * Variable(t["loss_weight.c_n"]!)).sum()).backward()
            runs.append((h.value, c.value, [x.grad!] + lstm.namedParameters.map { $0.variable.grad! }))
        }
        #expect(runs[0].h.scalars == runs[1].h.scalars && runs[0].c.scalars == runs[1].c.scalars)
        #expect(zip(runs[0].grads, runs[1].grads).allSatisfy { $0.scalars == $1.scalars }, "\(name): gradients differ")
        #expect(runs[1].grads[0].scalars.contains { $0 != 0 })
    }

    @Test(arguments: ["linear_ce", "linear_ce_smooth"])
    func linearCrossEntropy(_ name: String) throws {
        print("\(name):")
        let (t, meta) = try fixture("\(name).safetensors")
        var g = SeededGenerator(seed: 0)
        let fc = Linear(7, 5, generator: &g)
        try fc.loadStateDict(["weight": t["param.weight"]!, "bias": t["param.bias"]!])
        let x = Variable(t["input"]!, requiresGrad: true)
        let logits = fc(x)
        expectClose(logits.value, t["logits"], 1e-5, "logits")
        let loss = crossEntropy(logits, labels: t["labels"]!.scalars.map { Int($0) },
                                labelSmoothing: Float(meta["label_smoothing"]!)!)
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-5, "loss")
        loss.backward()
        expectClose(x.grad!, t["grad.input"], 1e-4, "grad input")
        expectClose(fc.weight.grad!, t["grad.param.weight"], 1e-4, "grad weight")
        expectClose(fc.bias!.grad!, t["grad.param.bias"], 1e-4, "grad bias")
    }

    @Test func regressionLosses() throws {
        let (t, _) = try fixture("losses.safetensors")
        let target = t["target"]!
        for (name, f) in [("mse", mseLoss), ("l1", l1Loss), ("smooth_l1", { smoothL1Loss($0, $1) })]
                as [(String, (Variable, Tensor) -> Variable)] {
            let p = Variable(t["prediction"]!, requiresGrad: true)
            let loss = f(p, target)
            expectClose(loss.value.reshaped([1]), t["\(name).loss"], 1e-5, "\(name) loss")
            loss.backward()
            expectClose(p.grad!, t["\(name).grad"], 1e-5, "\(name) grad")
        }
    }

    /// Three optimiser steps on an LSTM classifier, checking the loss before and the weights after each.
    @Test(arguments: ["optim_adam", "optim_adamw", "optim_adam_l2", "optim_sgd_nesterov", "optim_sgd_clip"])
    func optimizerSteps(_ name: String) throws {
        print("\(name):")
        let (t, meta) = try fixture("\(name).safetensors")
        let config = ModelConfig(kind: .row, height: 6, width: 5, hidden: 6, classes: 3)
        let model = try makeClassifier(config, seed: 0)
        let initial = Dictionary(uniqueKeysWithValues: t.filter { $0.key.hasPrefix("param.") }.map {
            (String($0.key.dropFirst(6)), $0.value)
        })
        try model.loadStateDict(initial)
        let lr = Float(meta["lr"]!)!, wd = Float(meta["weight_decay"] ?? "0")!
        let optimizer: any Optimizer
        switch meta["optimizer"]! {
        case "adam": optimizer = Adam(learningRate: lr, weightDecay: wd)
        case "adamw": optimizer = Adam.adamW(learningRate: lr, weightDecay: wd)
        default: optimizer = SGD(learningRate: lr, momentum: Float(meta["momentum"]!)!,
                                 nesterov: meta["nesterov"] == "true", weightDecay: wd)
        }
        let labels = t["labels"]!.scalars.map { Int($0) }
        for s in 0..<3 {
            model.zeroGrad()
            let loss = crossEntropy(model(Variable(t["input"]!)), labels: labels)
            expectClose(loss.value.reshaped([1]), t["loss.step\(s)"], 1e-5, "loss before step \(s + 1)")
            loss.backward()
            if let maxNorm = meta["max_norm"] {
                let norm = clipGradientNorm(model.parameters, maxNorm: Float(maxNorm)!)
                expectClose(Tensor(shape: [1], scalars: [norm]), t["gradnorm.step\(s)"], 1e-5, "grad norm \(s)")
            }
            optimizer.step(model.namedParameters)
            for (pname, p) in model.namedParameters {
                expectClose(p.value, t["step\(s + 1).\(pname)"], 1e-5, "step \(s + 1) \(pname)")
            }
        }
    }

    @Test func learningRateSchedules() throws {
        let (t, _) = try fixture("schedules.safetensors")
        let stepLR = (0..<20).map { LearningRateSchedule.step(stepSize: 5, gamma: 0.5).rate(base: 0.1, step: $0) }
        let cosine = (0..<20).map {
            LearningRateSchedule.cosine(totalSteps: 20, minimum: 0.001).rate(base: 0.1, step: $0)
        }
        expectClose(Tensor(shape: [20], scalars: stepLR), t["step_lr"], 1e-7, "StepLR")
        expectClose(Tensor(shape: [20], scalars: cosine), t["cosine"], 1e-6, "CosineAnnealingLR")
    }

    /// A RowLSTM state_dict saved by `safetensors.torch.save_file` loads and predicts as in PyTorch.
    @Test func pytorchRowLSTMLoadsAndPredicts() throws {
        let url = try #require(Bundle.module.url(forResource: "row_lstm_bi.safetensors", withExtension: nil,
                                                 subdirectory: "Fixtures"))
        let model = try ModelFile.load(url.path)
        #expect(model.config.hidden == 16 && model.config.layers == 2 && model.config.bidirectional
                && model.config.classes == 10)
        let (io, _) = try fixture("row_lstm_bi_io.safetensors")
        let logits = Autograd.withoutGradients { model(Variable(io["input"]!)) }
        expectClose(logits.value, io["logits"], 1e-5, "RowLSTM logits")
        // And the reverse trip: a file written here holds the same names and values.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rowlstm-\(getpid()).safetensors").path
        try ModelFile.save(model, to: tmp)
        let (back, meta) = try SafeTensors.read(tmp)
        let (orig, _) = try SafeTensors.read(url.path)
        #expect(back == orig)
        #expect(meta[ModelFile.configKey] != nil)
        try? FileManager.default.removeItem(atPath: tmp)
    }
}
