/// A checkpoint or tensor file that cannot be used; the message names the file and the fault.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, InputLimitError {
    case invalid(String)
    case mismatch(String)
    case io(String)
    /// A file refused for passing the limit `limit` (a safetensors header over `maxHeaderBytes`), named in the message.
    case tooLarge(String, limit: InputLimits.Setting)

    public var description: String {
        switch self {
        case let .invalid(m), let .mismatch(m), let .io(m), let .tooLarge(m, _): return m
        }
    }

    public var exceededLimits: [InputLimits.Setting] {
        if case let .tooLarge(_, limit) = self { return [limit] }
        return []
    }
}

/// Refuses a checkpoint whose settings describe a model needing at least `needed` weights when the file holds
/// only `stored` values: every weight must come from the file, so such settings are damaged or hostile, and
/// refusing them before the model is built keeps a small file from making the process allocate gigabytes.
func checkWeightClaim(needed: Int, stored: Int, settings: String, source: String) throws {
    guard needed <= stored else {
        throw CheckpointError.mismatch(
            "\(source): its settings (\(settings)) need at least \(needed) weights, the file holds \(stored) values")
    }
}
