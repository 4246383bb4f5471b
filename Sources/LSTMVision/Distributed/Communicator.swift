import Foundation

/// The processes of a data-parallel run and the collectives `Trainer` needs of them, kept out of the layers: one
/// process (`SingleProcessCommunicator`) or the ranks of an MPI job (`MPICommunicator`, with the MPI trait).
/// Every call is collective: every rank makes it, in the same order, with buffers of the same length.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, 0..<size; rank 0 prints and writes the run's files.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` on every rank with rank `root`'s.
    func broadcast(_ values: inout [Float], root: Int) throws
    /// Replaces `values` on every rank with the element-wise sum over ranks taken in rank order,
    /// ((v₀ + v₁) + v₂) + …: the same bits on every rank, whatever the timing, and the same as one process adding
    /// the ranks' buffers one after the other.
    func sumInRankOrder(_ values: inout [Float]) throws
    func sumInRankOrder(_ values: inout [Double]) throws
    /// Every rank's `bytes` (the same count on each), in rank order.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    func barrier() throws
    /// Ends every rank of the job at once with `code` (after an error that only this rank has seen).
    func abort(code: Int32) -> Never
    /// Leaves the job cleanly (MPI_Finalize); the last call.
    func finish()
    /// Seconds a collective may wait for the other ranks before the job is ended with an error (nil: forever);
    /// `MPICommunicator`'s default is nil, `lstmvision train`'s `--collective-timeout` 300.
    var collectiveTimeout: Double? { get set }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// One process waits for nobody: no timeout.
    public var collectiveTimeout: Double? {
        get { nil }
        set {}
    }

    /// The ranks whose `value` differs from rank 0's (every rank gets the answer): a check that all ranks were
    /// started alike. Values are compared by a 64-bit FNV-1a hash of their UTF-8.
    public func ranksDiffering(from value: String) throws -> [Int] {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in value.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let all = try allGather((0..<8).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) })
        return all.indices.filter { all[$0] != all[0] }
    }
}

/// A run of one process: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func broadcast(_ values: inout [Float], root: Int) throws {}
    public func sumInRankOrder(_ values: inout [Float]) throws {}
    public func sumInRankOrder(_ values: inout [Double]) throws {}
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finish() {}
}
