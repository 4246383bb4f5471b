/// A checkpoint or tensor file that cannot be used; the message names the file and the fault.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case mismatch(String)
    case io(String)

    public var description: String {
        switch self {
        case let .invalid(m), let .mismatch(m), let .io(m): return m
        }
    }
}
