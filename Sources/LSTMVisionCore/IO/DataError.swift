/// A data file that cannot be used; the message names the file and what is wrong with it.
public enum DataError: Error, CustomStringConvertible, Equatable, InputLimitError {
    case missing(String)
    case invalid(String)
    /// Over the limit `limit`, which the message names.
    case tooLarge(String, limit: InputLimits.Setting)

    public var description: String {
        switch self {
        case let .missing(m), let .invalid(m), let .tooLarge(m, _): return m
        }
    }

    public var exceededLimits: [InputLimits.Setting] {
        if case let .tooLarge(_, limit) = self { return [limit] }
        return []
    }
}
