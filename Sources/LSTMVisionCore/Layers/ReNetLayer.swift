/// One ReNet layer (Visin et al. 2015): a bidirectional LSTM sweeps down every column of a feature grid,
/// then another sweeps along every row of its output, so that each cell's output sees the whole grid.
/// Shared by the ReNet classifier and the detector's ReNet encoder; parameters `vertical.*`, `horizontal.*`.
public final class ReNetLayer: Module {
    /// Down the columns (time = grid row) and along the rows (time = grid column), both bidirectional.
    public let vertical: LSTM
    public let horizontal: LSTM
    /// The sweeps' gate products in inference (`LSTM.precision`).
    public var precision: Precision {
        get { vertical.precision }
        set { vertical.precision = newValue; horizontal.precision = newValue }
    }
    /// Output features per cell: both directions of the horizontal sweep.
    public var outputSize: Int { 2 * horizontal.hiddenSize }

    public init(inputSize: Int, hiddenSize: Int, generator: inout SeededGenerator) {
        vertical = LSTM(inputSize: inputSize, hiddenSize: hiddenSize, bidirectional: true, batchFirst: false,
                        generator: &generator)
        horizontal = LSTM(inputSize: 2 * hiddenSize, hiddenSize: hiddenSize, bidirectional: true, batchFirst: false,
                          generator: &generator)
    }

    public var namedParameters: NamedParameters {
        prefixed("vertical", vertical) + prefixed("horizontal", horizontal)
    }

    /// grid [N, rows·columns, F] (cells in raster order) → [N, rows·columns, 2·hidden].
    public func callAsFunction(_ grid: Variable, rows gh: Int, columns gw: Int) -> Variable {
        let n = grid.shape[0], f = grid.shape[2], h2 = outputSize
        precondition(grid.shape == [n, gh * gw, f], "ReNetLayer: grid \(grid.shape) is not [N, \(gh)·\(gw), F]")
        // Down the columns: time-major over the rows, batch N·columns.
        let cols = vertical(reshape(swapLeadingAxes(reshape(grid, [n, gh, gw * f])), [gh, n * gw, f])).output
        let byImage = swapLeadingAxes(reshape(cols, [gh, n, gw * h2]))               // cols [I, N·J, 2h] → [N, I, J·2h]
        // Along the rows: time-major over the columns, batch N·rows.
        let rows = horizontal(swapLeadingAxes(reshape(byImage, [n * gh, gw, h2]))).output            // [J, N·I, 2h]
        return reshape(swapLeadingAxes(rows), [n, gh * gw, h2])
    }
}
