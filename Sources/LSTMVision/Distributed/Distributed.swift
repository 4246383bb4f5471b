import Foundation

/// The communicator of this process: one process, unless `start` found itself launched by `mpirun`.
public enum Distributed {
    /// Set by `start`; `Trainer` uses it by default.
    nonisolated(unsafe) public private(set) static var current: any Communicator = SingleProcessCommunicator()

    /// True when the environment says this process is a rank of an Open MPI job (mpirun sets OMPI_COMM_WORLD_SIZE).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Joins the MPI job when launched by `mpirun` (once, before any other call); a build without the MPI trait
    /// refuses, since its ranks would each train alone into the same folder.
    @discardableResult
    public static func start() throws -> any Communicator {
        guard launchedByMPI else { return current }
        #if MPI
        current = try MPICommunicator()
        return current
        #else
        throw DistributedError("launched by mpirun, but this lstmvision was built without MPI:"
                               + " build it with `swift build --traits MPI` (docs/distributed.md)", everyRank: true)
        #endif
    }
}
