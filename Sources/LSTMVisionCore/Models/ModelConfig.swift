import Foundation

/// What a classifier is and how big: enough to rebuild it, stored as JSON in a checkpoint's
/// safetensors `__metadata__` (key `lstmvision.config`), or inferred from PyTorch tensor names.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// The model families.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Each image row is a time step.
        case row
        /// k×k patches in raster order are the time steps.
        case patch
        /// ReNet: bidirectional sweeps down the columns, then along the rows, of a patch grid.
        case renet
    }

    public var kind: Kind
    public var height: Int
    public var width: Int
    public var channels: Int
    public var hidden: Int
    public var layers: Int
    public var bidirectional: Bool
    public var classes: Int
    /// Patch side for `patch` and `renet`.
    public var patch: Int
    /// Width of the hidden fully connected layer of `renet` (0: none).
    public var fcHidden: Int
    /// Dropout between stacked LSTM layers (and before ReNet's classifier).
    public var dropout: Float

    public init(kind: Kind = .row, height: Int = 28, width: Int = 28, channels: Int = 1, hidden: Int = 128,
                layers: Int = 1, bidirectional: Bool = false, classes: Int = 10, patch: Int = 2,
                fcHidden: Int = 0, dropout: Float = 0) {
        self.kind = kind
        self.height = height
        self.width = width
        self.channels = channels
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.classes = classes
        self.patch = patch
        self.fcHidden = fcHidden
        self.dropout = dropout
    }

    /// Checks the sizes fit together; the message says which does not.
    public func validate() throws {
        func bad(_ m: String) -> ModelError { .invalidConfig(m) }
        guard height > 0, width > 0, channels > 0 else {
            throw bad("image size \(height)×\(width)×\(channels) must be positive")
        }
        guard height <= 4096, width <= 4096, channels <= 4 else {
            throw bad("image size \(height)×\(width)×\(channels) is over the limit 4096×4096×4")
        }
        guard hidden > 0, hidden <= 8192 else { throw bad("hidden size \(hidden) must be in 1...8192") }
        guard layers > 0, layers <= 16 else { throw bad("layers \(layers) must be in 1...16") }
        guard classes > 1, classes <= 100_000 else { throw bad("classes \(classes) must be in 2...100000") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout \(dropout) must be in [0, 1)") }
        if kind != .row {
            guard patch > 0, height % patch == 0, width % patch == 0 else {
                throw bad("patch \(patch) must divide the image size \(height)×\(width)")
            }
        }
    }

    /// The JSON form stored in checkpoints.
    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A model that cannot be built or loaded as asked.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    /// An input the model cannot take (another image size, say).
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .invalidConfig(m): return "invalid model: \(m)"
        case let .invalidInput(m): return m
        }
    }
}
