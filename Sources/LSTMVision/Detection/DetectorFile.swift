import Foundation

/// Saves and loads `LSTMDetector`s as safetensors files with PyTorch `state_dict` names, like `ModelFile`
/// does for classifiers; the detector's settings travel as JSON in `__metadata__["lstmvision.detector"]`.
public enum DetectorFile {
    public static let configKey = "lstmvision.detector"

    /// Writes the detector atomically; `metadata` adds string entries (e.g. AP).
    public static func save(_ model: LSTMDetector, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta[configKey] = model.config.json()
        try SafeTensors.write(model.stateDict(), metadata: meta, to: path)
    }

    /// Reads a detector file and rebuilds the detector it holds.
    public static func load(_ path: String) throws -> LSTMDetector {
        let (tensors, metadata) = try SafeTensors.read(path)
        let config = try self.config(in: metadata, source: path)
        let model = try LSTMDetector.make(config, seed: 0)
        try model.loadStateDict(tensors, source: path)
        return model
    }

    /// The detector settings in a checkpoint's metadata; `source` names the file in errors.
    public static func config(in metadata: [String: String], source: String) throws -> DetectorConfig {
        guard let json = metadata[configKey] else {
            throw CheckpointError.mismatch("\(source): not a detector checkpoint (no \(configKey) metadata)")
        }
        guard let config = try? JSONDecoder().decode(DetectorConfig.self, from: Data(json.utf8)) else {
            throw CheckpointError.invalid("\(source): unreadable \(configKey) metadata")
        }
        do { try config.validate() } catch { throw CheckpointError.invalid("\(source): \(error)") }
        return config
    }
}
