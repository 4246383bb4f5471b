import Foundation

/// Saves and loads `FramePredictor`s as safetensors files of PyTorch `state_dict` names (`cells.0.conv.weight`, ...,
/// `head.bias`): a PyTorch state_dict of issue 23's `FramePredictor` saved with `safetensors.torch.save_file` loads
/// here, its sizes (hidden channels per cell, kernel, patch) inferred from the names and shapes, and the other way.
public enum FramePredictorFile {
    /// Writes the model atomically; `metadata` adds string entries.
    public static func save(_ model: FramePredictor, to path: String, metadata: [String: String] = [:]) throws {
        try SafeTensors.write(model.stateDict(), metadata: metadata, to: path)
    }

    /// Reads a frame-predictor file (within `limits`) and rebuilds the model it holds.
    public static func load(_ path: String, limits: InputLimits = .default) throws -> FramePredictor {
        let (tensors, _) = try SafeTensors.read(path, limits: limits)
        return try model(from: tensors, source: path)
    }

    /// Whether `tensors` look like a frame predictor's state dict (a 1×1 `head` and a first ConvLSTM cell).
    public static func isFramePredictor(_ tensors: [String: Tensor]) -> Bool {
        tensors["head.weight"] != nil && tensors["cells.0.conv.weight"] != nil
    }

    /// The frame predictor whose parameters are `state` (PyTorch names), sizes inferred; every inconsistency is one
    /// `CheckpointError` naming `source` and the tensor.
    public static func model(from state: [String: Tensor], source: String) throws -> FramePredictor {
        func fail(_ m: String) -> CheckpointError { .mismatch("\(source): not a FramePredictor state dict: \(m)") }
        guard let head = state["head.weight"] else { throw fail("no tensor 'head.weight'") }
        guard head.rank == 4, head.shape[2] == 1, head.shape[3] == 1 else {
            throw fail("'head.weight' has shape \(head.shape), expected [p·p, hidden, 1, 1]")
        }
        let p = Int(Double(head.shape[0]).squareRoot().rounded())
        guard p > 0, p * p == head.shape[0] else {
            throw fail("'head.weight' has \(head.shape[0]) outputs, not the square of a patch size")
        }
        var hidden: [Int] = [], kernel = 0, inChannels = p * p
        while let w = state["cells.\(hidden.count).conv.weight"] {
            let name = "cells.\(hidden.count).conv.weight"
            guard w.rank == 4, w.shape[0] % 4 == 0, w.shape[0] > 0, w.shape[2] == w.shape[3], w.shape[2] % 2 == 1
            else { throw fail("'\(name)' has shape \(w.shape), expected [4·hidden, in + hidden, k, k] with k odd") }
            let h = w.shape[0] / 4
            guard w.shape[1] == inChannels + h else {
                throw fail("'\(name)' reads \(w.shape[1]) channels, expected \(inChannels) + \(h)")
            }
            guard kernel == 0 || w.shape[2] == kernel else {
                throw fail("'\(name)' has a \(w.shape[2])×\(w.shape[2]) kernel, the cells before \(kernel)×\(kernel)")
            }
            (kernel, inChannels) = (w.shape[2], h)
            hidden.append(h)
        }
        guard !hidden.isEmpty else { throw fail("no tensor 'cells.0.conv.weight'") }
        guard head.shape[1] == hidden.last! else {
            throw fail("'head.weight' reads \(head.shape[1]) channels, the last cell has \(hidden.last!)")
        }
        var g = SeededGenerator(seed: 0)
        let model = FramePredictor(hidden: hidden, kernelSize: kernel, patch: p, generator: &g)
        try model.loadStateDict(state, source: source)
        return model
    }
}
