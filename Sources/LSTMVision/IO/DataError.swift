/// A data file that cannot be used; the message names the file and what is wrong with it.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case invalid(String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case let .missing(m), let .invalid(m), let .tooLarge(m): return m
        }
    }
}
