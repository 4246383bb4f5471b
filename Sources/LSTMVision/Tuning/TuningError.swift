/// A search that cannot start or go on: a bad space file, a study file that does not fit the command, a trial that
/// cannot be launched. The message is one line naming the file (and line) and what is wrong.
public struct TuningError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) { self.description = description }
}
