import Foundation
import Yams

/// One searched hyperparameter: a `train` option name (without `--`) and the values it may take.
public struct SearchParameter: Codable, Sendable, Equatable {
    /// A choice among listed values, an integer range or a float range, the ranges on a linear or a log scale.
    public enum Domain: Codable, Sendable, Equatable {
        case choice([ParameterValue])
        case int(low: Int, high: Int, log: Bool)
        case float(low: Double, high: Double, log: Bool)
    }

    public let name: String
    public let domain: Domain
    /// The line of the space file that names it (0 when built in code).
    public let line: Int

    public init(name: String, domain: Domain, line: Int = 0) {
        self.name = name
        self.domain = domain
        self.line = line
    }

    /// Whether the range is searched on a log scale.
    public var isLog: Bool {
        switch domain {
        case .choice: return false
        case let .int(_, _, log), let .float(_, _, log): return log
        }
    }

    /// The values that stand for the domain when it is checked against `train`: every choice, or both bounds.
    public var probes: [ParameterValue] {
        switch domain {
        case let .choice(values): return values
        case let .int(low, high, _): return low == high ? [.int(low)] : [.int(low), .int(high)]
        case let .float(low, high, _): return low == high ? [.float(low)] : [.float(low), .float(high)]
        }
    }
}

/// The hyperparameters a search draws, read from a small YAML (or JSON) file: a mapping from `train` option names
/// to `{choice: [...]}`, `{int: [low, high]}` or `{float: [low, high]}`, a range with an optional `log: true`:
///
///     hidden: {int: [32, 512], log: true}
///     bidirectional: {choice: [false, true]}
///     lr: {float: [1.0e-4, 1.0e-2], log: true}
///
/// Ranges include both bounds. Every fault is one `TuningError` naming the file and line.
public struct SearchSpace: Codable, Sendable, Equatable {
    public let parameters: [SearchParameter]

    public init(parameters: [SearchParameter]) { self.parameters = parameters }

    /// Reads the space file at `path` within `limits`.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> SearchSpace {
        let data = try limits.readFile(path)
        guard let text = String(data: data, encoding: .utf8) else { throw TuningError("\(path): not UTF-8 text") }
        return try parse(text, source: path)
    }

    /// The space in `text`; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> SearchSpace {
        func fail(_ line: Int?, _ m: String) -> TuningError {
            TuningError(line.map { "\(source): line \($0): \(m)" } ?? "\(source): \(m)")
        }
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            let first = String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init)
            throw fail(nil, "malformed YAML: \(first ?? "unreadable")")
        }
        guard let top = root?.mapping, !top.isEmpty else {
            throw fail(nil, "expected a mapping of train options to {choice: [...]}, {int: [lo, hi]} or"
                       + " {float: [lo, hi]}")
        }
        var parameters: [SearchParameter] = []
        for (key, value) in top {
            let line = (key.mark?.line).map { $0 } ?? 0
            guard var name = key.scalar?.string, !name.isEmpty else { throw fail(line, "an option name must be text") }
            if name.hasPrefix("--") { name.removeFirst(2) }
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), !name.isEmpty else {
                throw fail(line, "'\(name)' is not an option name")
            }
            guard !parameters.contains(where: { $0.name == name }) else {
                throw fail(line, "'\(name)' is given twice")
            }
            parameters.append(SearchParameter(name: name, domain: try domain(value, name: name,
                                                                             fail: { fail(line, $0) }),
                                              line: line))
        }
        return SearchSpace(parameters: parameters)
    }

    /// The domain `{choice: …}`, `{int: …}` or `{float: …}` of parameter `name`.
    static func domain(_ node: Yams.Node, name: String, fail: (String) -> TuningError) throws
        -> SearchParameter.Domain {
        let kinds = ["choice", "int", "float"]
        guard let spec = node.mapping else {
            throw fail("'\(name)' must be {choice: [...]}, {int: [lo, hi]} or {float: [lo, hi]}")
        }
        var kind: String?, values: Yams.Node?, log = false
        for (k, v) in spec {
            let word = k.scalar?.string ?? ""
            if kinds.contains(word) {
                guard kind == nil else { throw fail("'\(name)' has both \(kind!) and \(word)") }
                (kind, values) = (word, v)
            } else if word == "log" {
                guard let b = v.scalar.flatMap({ Bool.construct(from: $0) }) else {
                    throw fail("'\(name)': log must be true or false")
                }
                log = b
            } else {
                throw fail("'\(name)': unknown key '\(word)' (expected choice, int or float, and log)")
            }
        }
        guard let kind, let list = values?.sequence else {
            throw fail("'\(name)' must be {choice: [...]}, {int: [lo, hi]} or {float: [lo, hi]}")
        }
        let words = try list.map { item -> String in
            guard let s = item.scalar?.string else { throw fail("'\(name)' lists a value that is not a scalar") }
            return s
        }
        switch kind {
        case "choice":
            guard !log else { throw fail("'\(name)': log applies to int and float ranges, not to a choice") }
            guard !words.isEmpty else { throw fail("'\(name)': empty choice") }
            let choices = zip(list, words).map { choiceValue($0.0, text: $0.1) }
            guard Set(choices).count == choices.count else { throw fail("'\(name)': a choice is listed twice") }
            return .choice(choices)
        case "int":
            let expected = "int must be [low, high] with two integers"
            let (low, high) = try bounds(words, name: name, expected: expected, log: log, fail: fail) { Int($0) }
            return .int(low: low, high: high, log: log)
        default:
            let expected = "float must be [low, high] with two finite numbers"
            let (low, high) = try bounds(words, name: name, expected: expected, log: log, fail: fail) {
                Double($0).flatMap { $0.isFinite ? $0 : nil }
            }
            return .float(low: low, high: high, log: log)
        }
    }

    /// `[low, high]` of an int or float range: two values, low not above high, both above zero on a log scale.
    /// `expected` says what a well-formed range is, for the error.
    static func bounds<T: Comparable & Numeric>(_ words: [String], name: String, expected: String, log: Bool,
                                                fail: (String) -> TuningError, parse: (String) -> T?) throws
        -> (T, T) {
        guard words.count == 2, let low = parse(words[0]), let high = parse(words[1]) else {
            throw fail("'\(name)': \(expected), got [\(words.joined(separator: ", "))]")
        }
        guard low <= high else { throw fail("'\(name)': empty range [\(low), \(high)] (low above high)") }
        guard !log || low > 0 else { throw fail("'\(name)': a log range must be above zero, got [\(low), \(high)]") }
        return (low, high)
    }

    /// A listed choice: a YAML boolean is a flag, a plain integer or number stays one, anything else is a word.
    static func choiceValue(_ node: Yams.Node, text: String) -> ParameterValue {
        let quoted = node.scalar?.style == .singleQuoted || node.scalar?.style == .doubleQuoted
        if !quoted, let scalar = node.scalar, let b = Bool.construct(from: scalar) { return .bool(b) }
        if !quoted, let i = Int(text) { return .int(i) }
        if !quoted, let d = Double(text), d.isFinite { return .float(d) }
        return .string(text)
    }

    /// The `train` words of a trial's values, in the space's order.
    public func arguments(_ values: [String: ParameterValue]) -> [String] {
        parameters.flatMap { p in values[p.name].map { $0.arguments(name: p.name) } ?? [] }
    }

    /// Refuses a space that `train` would refuse: `check` parses `fixed` followed by each parameter's probe values
    /// (every choice, both bounds) and throws train's message, reported with the parameter's line. `reserved` are
    /// options the tuner sets itself.
    public func validate(source: String, fixed: [String], reserved: Set<String>,
                         check: ([String]) throws -> Void) throws {
        for p in parameters {
            let at = p.line > 0 ? "\(source): line \(p.line)" : source
            guard !reserved.contains(p.name) else {
                throw TuningError("\(at): '\(p.name)' is set by tune itself and cannot be searched")
            }
            for v in p.probes {
                let words = v.arguments(name: p.name)
                do {
                    try check(fixed + words)
                } catch {
                    let m = String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                    let shown = words.isEmpty ? "without --\(p.name)" : words.joined(separator: " ")
                    throw TuningError("\(at): '\(p.name)': train refuses \(shown): \(m)")
                }
            }
        }
    }
}
