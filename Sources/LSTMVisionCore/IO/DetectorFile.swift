import Foundation

/// Saves and loads `LSTMDetector`s as safetensors files with PyTorch `state_dict` names, like `ModelFile`
/// does for classifiers; the detector's settings travel as JSON in `__metadata__["lstmvision.detector"]`. A file
/// without them (a PyTorch `state_dict` of python/lstmvision_torch.py's `LSTMDetector`) is read as its tensors'
/// names and shapes describe, with `ModelFileHints` for what they leave open (input size, K, refiner context).
public enum DetectorFile {
    public static let configKey = "lstmvision.detector"

    /// Writes the detector atomically; `metadata` adds string entries (e.g. AP).
    public static func save(_ model: LSTMDetector, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta[configKey] = model.config.json()
        try SafeTensors.write(model.stateDict(), metadata: meta, to: path)
    }

    /// Reads a detector file (within `limits`) and rebuilds the detector it holds; `hints` serve a file without
    /// metadata.
    public static func load(_ path: String, limits: InputLimits = .default,
                            hints: ModelFileHints = .none) throws -> LSTMDetector {
        let (tensors, metadata) = try SafeTensors.read(path, limits: limits)
        let config = try self.config(in: metadata, tensors: tensors, source: path, hints: hints)
        let model = try LSTMDetector.make(config, seed: 0)
        try model.loadStateDict(tensors, source: path)
        return model
    }

    /// The detector settings in a checkpoint's metadata (or, without it, inferred from the tensors' names and shapes
    /// and `hints`), validated, and refused when they need more weights than the file's `tensors` hold (see
    /// `checkWeightClaim`); `source` names the file in errors.
    public static func config(in metadata: [String: String], tensors: [String: Tensor], source: String,
                              hints: ModelFileHints = .none) throws -> DetectorConfig {
        let config: DetectorConfig
        if let json = metadata[configKey] {
            config = try InputLimits.decodeJSON(DetectorConfig.self, from: Data(json.utf8), source: source,
                                                what: configKey + " metadata")
        } else if metadata[ModelFile.configKey] != nil {
            throw CheckpointError.mismatch("\(source): not a detector checkpoint (its \(ModelFile.configKey)"
                                           + " metadata is a classifier's)")
        } else {
            config = try infer(tensors, hints: hints, source: source)
        }
        do { try config.validate() } catch { throw CheckpointError.invalid("\(source): \(error)") }
        // The 3×3 convolutions', the ReNet sweeps' and the refiner's recurrent (4 LSTM directions of 4h×h each) and
        // the decoder's recurrent weights alone hold this many values.
        let conv = zip([config.channels] + config.convWidths, config.convWidths).reduce(0) { $0 + 9 * $1.0 * $1.1 }
        let recurrent = (config.renetWidths + (config.refiner.map { [$0.hidden] } ?? []))
            .reduce(0) { $0 + 16 * $1 * $1 }
        try checkWeightClaim(needed: conv + recurrent + 4 * config.hidden * config.hidden,
                             stored: tensors.values.reduce(0) { $0 + $1.count },
                             settings: "\(config.encoderDescription), hidden \(config.hidden)", source: source)
        return config
    }
}
