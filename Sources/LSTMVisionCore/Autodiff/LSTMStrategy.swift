import Foundation

/// The kernel the LSTM's matrix products may use: a value, so that tests and comparisons can force either.
enum LSTMKernel: Sendable {
    /// SmallGEMM for each product whose width it takes (a multiple of 16); OpenBLAS for the rest.
    case smallGEMM
    /// OpenBLAS for every product but the backward's weight-gradient sums, which are SmallGEMM's in either case (their
    /// rows are padded to a multiple of 16).
    case openBLAS

    /// The kernel a plan takes unless told otherwise: `.openBLAS` when the environment sets LSTMVISION_SMALL_GEMM=0
    /// (to compare the two on a whole run, such as `lstmvision bench`), else `.smallGEMM`. Read once, here.
    static let `default`: LSTMKernel =
        ProcessInfo.processInfo.environment["LSTMVISION_SMALL_GEMM"] == "0" ? .openBLAS : .smallGEMM

    /// True when this kernel is SmallGEMM and SmallGEMM takes `n` columns.
    func usesSmallGEMM(columns n: Int) -> Bool { self == .smallGEMM && SmallGEMM.supports(n: n) }
}

/// How one direction's forward computes each step's gates, b + x_t·W_ihᵀ + h_{t−1}·W_hhᵀ. Every strategy gives
/// the plain LSTM's results (`LSTMReference`); they differ in speed.
enum LSTMStrategy: Equatable, Sendable {
    /// One sequence in inference, on two threads in `Lockstep`: each computes the gates and the cell update of half of
    /// the hidden units and reads half of the weights, from its own cache; the two meet after every step. When another
    /// lockstep is running, the sequence runs as `.smallGEMMInputUpFront` on one thread.
    case lockstepHalves
    /// Each chain's step gates in one SmallGEMM call reading both packed weights, each gate block written once and
    /// used while in cache.
    case smallGEMMFused
    /// The input products of all steps in one SmallGEMM call up front, then the recurrent product per step: for chains
    /// of few rows, where reading W_ih every step costs more than it saves.
    case smallGEMMInputUpFront
    /// OpenBLAS for both: the input products up front (on all the direction's threads), the recurrent one per step.
    case openBLAS

    /// True when the strategy's products are SmallGEMM's.
    var usesSmallGEMM: Bool { self != .openBLAS }
}

/// How a layer's directions run, and each one's strategy: chosen in one place (`choose`), followed by the forward and
/// the backward.
struct LSTMPlan: Equatable, Sendable {
    /// The directions run at the same time, one thread each, each forward and backward on all the rows (else one
    /// after the other, each on all `threads`, its rows split into chains).
    var concurrentDirections: Bool
    /// The threads the layer runs on.
    var threads: Int
    /// Each direction's forward.
    var strategies: [LSTMStrategy]
    /// The kernel of the backward's products dh_{t−1} = dgates·W_hh and dx_t = dgates·W_ih.
    var backwardKernel: LSTMKernel

    /// The threads each direction's forward and backward run on.
    var threadsPerDirection: Int { concurrentDirections ? 1 : threads }

    /// The plan for directions over `rows` rows with `hidden` units, each training (its activations kept for the
    /// backward) or not, on `threads`, with the products on `kernel`:
    /// - directions run concurrently when there are several threads and the rows are too few to split (under 16),
    ///   or in training up to 128 rows;
    /// - a direction uses SmallGEMM when it takes 4H columns, at any batch (it runs at most 32 rows through a panel
    ///   at a time; on two threads the chains are 32 rows at most), then: lockstep halves for one sequence in
    ///   inference on two threads (H a multiple of 32), fused step products with 8 or more rows per chain, else the
    ///   input products up front; otherwise OpenBLAS.
    static func choose(rows N: Int, hidden H: Int, training: [Bool], threads: Int = Parallel.threads,
                       kernel: LSTMKernel = .default) -> LSTMPlan {
        let fewRows = Parallel.rowBlocks(N, threads: threads) <= 1
        let concurrent = training.count > 1 && threads > 1
            && (fewRows || (training.contains(true) && N <= 128))
        let each = concurrent ? 1 : threads
        let smallGEMM = kernel.usesSmallGEMM(columns: 4 * H)
        let rowsPerChain = LSTMForward.rowChains(N, threads: each)[0].count
        let strategies = training.map { keep -> LSTMStrategy in
            guard smallGEMM else { return .openBLAS }
            if !keep && N == 1 && each >= 2 && H % 32 == 0 && Lockstep.available { return .lockstepHalves }
            return rowsPerChain >= 8 ? .smallGEMMFused : .smallGEMMInputUpFront
        }
        return LSTMPlan(concurrentDirections: concurrent, threads: threads, strategies: strategies,
                        backwardKernel: kernel)
    }

    /// Stops with a message when this plan cannot run directions of these shapes (a forced plan, from a test).
    func check(rows N: Int, hidden H: Int, training: [Bool]) {
        precondition(strategies.count == training.count && threads >= 1,
                     "LSTM: a plan for \(strategies.count) directions on \(threads) threads, got \(training.count)")
        for (s, keep) in zip(strategies, training) {
            precondition(!s.usesSmallGEMM || SmallGEMM.supports(n: 4 * H),
                         "LSTM: \(s) needs 4H a multiple of 16, H = \(H)")
            precondition(s != .lockstepHalves || (!keep && N == 1 && H % 32 == 0),
                         "LSTM: lockstep halves needs one sequence in inference, H a multiple of 32: N \(N), H \(H)")
        }
    }
}
