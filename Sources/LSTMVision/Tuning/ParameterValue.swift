import Foundation

/// One hyperparameter's value in a trial: a number, a flag or a word, as it is passed to `lstmvision train`
/// (`--name value`; a flag is `--name` when true and left out when false). Encoded as the plain JSON value.
public enum ParameterValue: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .float(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .int(i): try c.encode(i)
        case let .float(d): try c.encode(d)
        case let .bool(b): try c.encode(b)
        case let .string(s): try c.encode(s)
        }
    }

    /// The text given to `train` (Swift's shortest round-trip form for floats).
    public var description: String {
        switch self {
        case let .int(i): return String(i)
        case let .float(d): return "\(d)"
        case let .bool(b): return String(b)
        case let .string(s): return s
        }
    }

    /// The value as a number for plots and the TPE sampler's numeric parameters (nil for words).
    public var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .float(d): return d
        case let .bool(b): return b ? 1 : 0
        case .string: return nil
        }
    }

    /// The command-line words of option `name` with this value.
    public func arguments(name: String) -> [String] {
        if case let .bool(b) = self { return b ? ["--" + name] : [] }
        return ["--" + name, description]
    }
}
