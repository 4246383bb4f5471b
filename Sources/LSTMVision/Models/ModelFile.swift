import Foundation

/// Saves and loads classifiers as safetensors files whose tensor names are PyTorch's `state_dict` names,
/// so the same file loads with `model.load_state_dict(safetensors.torch.load_file(path))`.
/// The model's settings travel in `__metadata__["lstmvision.config"]`; a file without them (written by
/// PyTorch) is read as a row-LSTM whose sizes come from its tensors' names and shapes.
public enum ModelFile {
    public static let configKey = "lstmvision.config"

    /// Writes the model atomically; `metadata` adds string entries (e.g. accuracy).
    public static func save(_ model: any Classifier, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta[configKey] = model.config.json()
        try SafeTensors.write(model.stateDict(), metadata: meta, to: path)
    }

    /// Reads a model file and rebuilds the classifier it holds.
    public static func load(_ path: String) throws -> any Classifier {
        let (tensors, metadata) = try SafeTensors.read(path)
        let config: ModelConfig
        if let json = metadata[configKey] {
            try COCOJSON.checkNesting(Data(json.utf8), source: path, what: configKey)   // JSONDecoder traps on deep nesting
            guard let c = try? JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)) else {
                throw CheckpointError.invalid("\(path): unreadable \(configKey) metadata")
            }
            config = c
        } else {
            config = try inferRowLSTM(tensors, source: path)
        }
        do { try config.validate() } catch { throw CheckpointError.invalid("\(path): \(error)") }
        // The recurrent weights alone hold layers·directions·4·hidden² values: a config that claims more
        // than the file holds is refused before the model is allocated.
        let stored = tensors.values.reduce(0) { $0 + $1.count }
        let claimed = config.layers * (config.bidirectional ? 2 : 1) * 4 * config.hidden * config.hidden
        guard claimed <= stored else {
            throw CheckpointError.mismatch("\(path): its settings (hidden \(config.hidden), \(config.layers) layers) need more weights than the file's \(stored) values")
        }
        let model = try makeClassifier(config, seed: 0)
        try model.loadStateDict(tensors, source: path)
        model.training = false
        return model
    }

    /// Infers a row-LSTM's settings from PyTorch names: `lstm.weight_ih_l{k}[_reverse]`, `fc.weight`.
    static func inferRowLSTM(_ t: [String: Tensor], source: String) throws -> ModelConfig {
        guard let w0 = t["lstm.weight_ih_l0"], w0.rank == 2, let fcw = t["fc.weight"], fcw.rank == 2 else {
            throw CheckpointError.mismatch("\(source): not a row-LSTM checkpoint (needs lstm.weight_ih_l0 and fc.weight, has \(t.keys.sorted().prefix(4).joined(separator: ", ")))")
        }
        guard w0.shape[0] % 4 == 0, w0.shape[0] > 0 else {
            throw CheckpointError.mismatch("\(source): lstm.weight_ih_l0 shape \(w0.shape) is not [4·hidden, input]")
        }
        let hidden = w0.shape[0] / 4, input = w0.shape[1]
        var layers = 0
        while t["lstm.weight_ih_l\(layers)"] != nil { layers += 1 }
        let bi = t["lstm.weight_ih_l0_reverse"] != nil
        return ModelConfig(kind: .row, height: input, width: input, channels: 1, hidden: hidden, layers: layers,
                           bidirectional: bi, classes: fcw.shape[0])
    }
}
