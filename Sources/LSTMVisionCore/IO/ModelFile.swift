import Foundation

/// Saves and loads classifiers as safetensors files whose tensor names are PyTorch's `state_dict` names,
/// so the same file loads with `model.load_state_dict(safetensors.torch.load_file(path))`.
/// The model's settings travel in `__metadata__["lstmvision.config"]`; a file without them (a PyTorch `state_dict`
/// of python/lstmvision_torch.py's modules) is read as the row-LSTM, patch-LSTM or ReNet its tensors' names and
/// shapes describe, with `ModelFileHints` (the data's image size) where they leave the choice open.
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

    /// Reads a model file (within `limits`) and rebuilds the classifier it holds; `hints` serve a file without
    /// metadata.
    public static func load(_ path: String, limits: InputLimits = .default,
                            hints: ModelFileHints = .none) throws -> any Classifier {
        try read(path, limits: limits, hints: hints).model
    }

    /// Reads a model file (within `limits`): the classifier it holds (in evaluation mode) and its metadata;
    /// `hints` serve a file without metadata.
    public static func read(_ path: String, limits: InputLimits = .default, hints: ModelFileHints = .none)
        throws -> (model: any Classifier, metadata: [String: String]) {
        let (tensors, metadata) = try SafeTensors.read(path, limits: limits)
        let model = try makeClassifier(try config(in: metadata, tensors: tensors, source: path, hints: hints),
                                       seed: 0)
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

    /// The classifier settings of a checkpoint (`metadata[configKey]`, or inferred from PyTorch names and shapes and
    /// `hints` when absent), validated, and refused when they need more weights than the file's `tensors` hold (see
    /// `checkWeightClaim`).
    public static func config(in metadata: [String: String], tensors: [String: Tensor], source: String,
                              hints: ModelFileHints = .none) throws -> ModelConfig {
        let config: ModelConfig
        if let json = metadata[configKey] {
            config = try InputLimits.decodeJSON(ModelConfig.self, from: Data(json.utf8), source: source,
                                                what: configKey + " metadata")
        } else {
            config = try infer(tensors, hints: hints, source: source)
        }
        do { try config.validate() } catch { throw CheckpointError.invalid("\(source): \(error)") }
        // The recurrent weights alone hold layers·directions·4·hidden² values.
        try checkWeightClaim(needed: config.layers * (config.bidirectional ? 2 : 1) * 4 * config.hidden * config.hidden,
                             stored: tensors.values.reduce(0) { $0 + $1.count },
                             settings: "hidden \(config.hidden), \(config.layers) layers", source: source)
        return config
    }
}
