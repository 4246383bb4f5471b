/// A distributed run that cannot go on. `everyRank` says that every rank raised the same error (a check all ranks
/// made together), so that rank 0 alone reports it and all exit; otherwise only this rank knows, and the others
/// must be ended (`Communicator.abort`).
public struct DistributedError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public let everyRank: Bool

    public init(_ description: String, everyRank: Bool) {
        self.description = description
        self.everyRank = everyRank
    }
}
