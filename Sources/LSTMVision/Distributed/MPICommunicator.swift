#if MPI
import CMPI
import Foundation

/// The ranks of an Open MPI job (`mpirun -np N lstmvision …`), over MPI_COMM_WORLD. MPI's errors are returned,
/// not fatal, and become one `DistributedError` naming the call; when a rank dies, mpirun ends the others. A
/// collective that waits longer than `collectiveTimeout` for the other ranks (one hung or stopped) ends the job with
/// one error (`CollectiveWatchdog`, then MPI_Abort). Used from one thread at a time (MPI_THREAD_SERIALIZED).
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    let world: MPI_Comm
    /// Elements summed per collective: a bucket of the buffer, so that counts stay far below Int32's range and the
    /// receive buffer small.
    static let bucket = 1 << 22
    /// Ends the job when a collective waits too long.
    let watchdog: CollectiveWatchdog

    /// Initialises MPI (once per process).
    public init() throws {
        var provided: Int32 = 0
        let initialised = MPI_Init_thread(nil, nil, lv_mpi_thread_serialized(), &provided)
        guard initialised == lv_mpi_success() else {
            throw DistributedError("MPI_Init_thread failed (\(initialised))", everyRank: false)
        }
        world = lv_mpi_comm_world()
        MPI_Comm_set_errhandler(world, lv_mpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        (rank, size) = (Int(r), Int(s))
        watchdog = CollectiveWatchdog { [r] call, seconds in Self.endJob(rank: Int(r), call: call, seconds: seconds) }
    }

    public var collectiveTimeout: Double? {
        get { watchdog.timeout }
        set { watchdog.timeout = newValue }
    }

    /// The watchdog's end of a job whose collective `call` has waited `seconds` on this rank: one error line, then
    /// MPI_Abort, which makes mpirun end every rank (and, should it not return within 10 s, this process's exit).
    static func endJob(rank: Int, call: String, seconds: Double) {
        let line = String(format: "lstmvision: error: rank %d: %@ waited %.1f s for the other ranks"
                          + " (--collective-timeout): a rank is hung, stopped or unreachable; ending the job"
                          + " (its last checkpoint stays loadable: train --resume)\n", rank, call, seconds)
        FileHandle.standardError.write(Data(line.utf8))
        Thread.detachNewThread {
            sleep(10)
            _exit(1)
        }
        MPI_Abort(lv_mpi_comm_world(), 1)
        _exit(1)
    }

    /// Makes the collective `call` under the watchdog's eye, then checks its result.
    func watched(_ code: @autoclosure () -> Int32, _ call: String) throws {
        try check(watchdog.watch(call, code), call)
    }

    /// Throws for a failed MPI call, with MPI's message.
    func check(_ code: Int32, _ call: String) throws {
        guard code != lv_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(lv_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw DistributedError("rank \(rank): \(call) failed: \(message)", everyRank: false)
    }

    public func broadcast(_ values: inout [Float], root: Int) throws {
        var start = 0
        while start < values.count {
            let n = min(Self.bucket, values.count - start)
            try values.withUnsafeMutableBufferPointer { v in
                try watched(MPI_Bcast(v.baseAddress! + start, Int32(n), lv_mpi_float(), Int32(root), world),
                            "MPI_Bcast")
            }
            start += n
        }
    }

    public func sumInRankOrder(_ values: inout [Float]) throws { try sum(&values, type: lv_mpi_float()) }
    public func sumInRankOrder(_ values: inout [Double]) throws { try sum(&values, type: lv_mpi_double()) }

    /// The fixed-order sum, bucket by bucket, as a reduce-scatter and an all-gather (what a ring all-reduce sends:
    /// 2·(N−1)/N of the buffer per rank): rank c receives every rank's c-th chunk (MPI_Alltoallv), adds them in rank
    /// order, and all ranks gather the summed chunks (MPI_Allgatherv). MPI_Allreduce would choose its own order.
    func sum<T: FloatingPoint>(_ values: inout [T], type: MPI_Datatype) throws {
        guard size > 1 else { return }
        var start = 0
        while start < values.count {
            let n = min(Self.bucket, values.count - start)
            let bounds = (0...size).map { start + $0 * n / size }
            let counts = (0..<size).map { Int32(bounds[$0 + 1] - bounds[$0]) }
            let offsets = (0..<size).map { Int32(bounds[$0]) }
            let mine = Int(counts[rank])
            var received = [T](repeating: 0, count: max(mine * size, 1))
            let receivedCounts = [Int32](repeating: Int32(mine), count: size)
            let receivedOffsets = (0..<size).map { Int32($0 * mine) }
            try values.withUnsafeBufferPointer { v in
                try watched(MPI_Alltoallv(v.baseAddress, counts, offsets, type, &received, receivedCounts,
                                          receivedOffsets, type, world), "MPI_Alltoallv")
            }
            var summed = Array(received[0..<mine])
            for r in 1..<size {
                for i in 0..<mine { summed[i] += received[r * mine + i] }
            }
            if summed.isEmpty { summed = [0] }     // a valid address for a chunk of nothing
            try values.withUnsafeMutableBufferPointer { v in
                try watched(MPI_Allgatherv(summed, Int32(mine), type, v.baseAddress, counts, offsets, type, world),
                            "MPI_Allgatherv")
            }
            start += n
        }
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: max(bytes.count * size, 1))
        try watched(MPI_Allgather(bytes, Int32(bytes.count), lv_mpi_byte(), &all, Int32(bytes.count),
                                  lv_mpi_byte(), world), "MPI_Allgather")
        return (0..<size).map { Array(all[($0 * bytes.count)..<(($0 + 1) * bytes.count)]) }
    }

    public func barrier() throws { try watched(MPI_Barrier(world), "MPI_Barrier") }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finish() { MPI_Finalize() }
}
#endif
