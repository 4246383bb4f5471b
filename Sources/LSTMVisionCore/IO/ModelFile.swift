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

    /// The metadata key of the class names, a JSON array of strings (by class index).
    public static let classNamesKey = "lstmvision.classes"

    /// Reads a model file (within `limits`) and rebuilds the classifier it holds.
    public static func load(_ path: String, limits: InputLimits = .default) throws -> any Classifier {
        try read(path, limits: limits).model
    }

    /// Reads a model file (within `limits`): the classifier it holds (in evaluation mode) and its metadata.
    public static func read(_ path: String, limits: InputLimits = .default)
        throws -> (model: any Classifier, metadata: [String: String]) {
        let (tensors, metadata) = try SafeTensors.read(path, limits: limits)
        let model = try makeClassifier(try config(in: metadata, tensors: tensors, source: path), seed: 0)
        try model.loadStateDict(tensors, source: path)
        model.training = false
        return (model, metadata)
    }

    /// The class names a model file records (`classNamesKey`), or nil when it records none.
    public static func classNames(in metadata: [String: String], classes: Int, source: String) throws -> [String]? {
        guard let json = metadata[classNamesKey] else { return nil }
        let names = try InputLimits.decodeJSON([String].self, from: Data(json.utf8), source: source,
                                               what: classNamesKey + " metadata")
        guard names.count == classes else {
            throw CheckpointError.invalid("\(source): \(classNamesKey) names \(names.count) classes, the model has"
                                          + " \(classes)")
        }
        return names
    }

    /// The classifier settings of a checkpoint (`metadata[configKey]`, or inferred from PyTorch names when absent),
    /// validated, and refused when they need more weights than the file's `tensors` hold (see `checkWeightClaim`).
    public static func config(in metadata: [String: String], tensors: [String: Tensor],
                              source: String) throws -> ModelConfig {
        let config: ModelConfig
        if let json = metadata[configKey] {
            config = try InputLimits.decodeJSON(ModelConfig.self, from: Data(json.utf8), source: source,
                                                what: configKey + " metadata")
        } else {
            config = try inferRowLSTM(tensors, source: source)
        }
        do { try config.validate() } catch { throw CheckpointError.invalid("\(source): \(error)") }
        // The recurrent weights alone hold layers·directions·4·hidden² values.
        try checkWeightClaim(needed: config.layers * (config.bidirectional ? 2 : 1) * 4 * config.hidden * config.hidden,
                             stored: tensors.values.reduce(0) { $0 + $1.count },
                             settings: "hidden \(config.hidden), \(config.layers) layers", source: source)
        return config
    }

    /// Infers a row-LSTM's settings from PyTorch names: `lstm.weight_ih_l{k}[_reverse]`, `fc.weight`.
    static func inferRowLSTM(_ t: [String: Tensor], source: String) throws -> ModelConfig {
        guard let w0 = t["lstm.weight_ih_l0"], w0.rank == 2, let fcw = t["fc.weight"], fcw.rank == 2 else {
            throw CheckpointError.mismatch("\(source): not a row-LSTM checkpoint (needs lstm.weight_ih_l0 and"
                                           + " fc.weight, has \(t.keys.sorted().prefix(4).joined(separator: ", ")))")
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
