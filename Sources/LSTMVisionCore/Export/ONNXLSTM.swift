import Foundation
import LSTMVisionProtos

/// An `LSTM` module as ONNX `LSTM` nodes, one per layer (stacked layers are consecutive nodes), time-major
/// (`layout` 0: X [T, B, in], Y [T, directions, B, hidden], Y_h [directions, B, hidden]). Layout 0 because ONNX
/// Runtime's CPU LSTM kernel implements only that one; the batch-first classifiers transpose their input once.
enum ONNXLSTM {
    /// PyTorch's gate blocks (i, f, g, o) in ONNX's order (i, o, f, c): block k of ONNX is block `gateOrder[k]` of
    /// PyTorch.
    static let gateOrder = [0, 3, 1, 2]

    /// The rows of a PyTorch gate-stacked matrix or vector (`rows`·`columns` values, 4 blocks of rows/4 rows) in
    /// ONNX's gate order.
    static func permuteGates(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        precondition(values.count == rows * columns && rows % 4 == 0, "ONNXLSTM: \(values.count) values")
        let block = rows / 4 * columns
        return gateOrder.flatMap { values[($0 * block)..<(($0 + 1) * block)] }
    }

    /// The inverse of `permuteGates`: ONNX's gate order back to PyTorch's.
    static func unpermuteGates(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        let block = rows / 4 * columns
        var out = values
        for (k, g) in gateOrder.enumerated() {
            out.replaceSubrange((g * block)..<((g + 1) * block), with: values[(k * block)..<((k + 1) * block)])
        }
        return out
    }

    /// ONNX's W [directions, 4h, in], R [directions, 4h, h] and B [directions, 8h] (= [W_b, R_b]) of one layer.
    static func weights(_ lstm: LSTM, layer: Int) -> (w: [Float], r: [Float], b: [Float], inputSize: Int) {
        let h = lstm.hiddenSize, cells = lstm.cells[layer], inputSize = cells[0].weightIH.shape[1]
        var w: [Float] = [], r: [Float] = [], b: [Float] = []
        for cell in cells {
            w += permuteGates(cell.weightIH.value.scalars, rows: 4 * h, columns: inputSize)
            r += permuteGates(cell.weightHH.value.scalars, rows: 4 * h, columns: h)
            b += permuteGates(cell.biasIH.value.scalars, rows: 4 * h, columns: 1)
                + permuteGates(cell.biasHH.value.scalars, rows: 4 * h, columns: 1)
        }
        return (w, r, b, inputSize)
    }

    /// Emits `lstm` on the time-major sequence `x` [T, B, in] (zero initial states). Returns the last layer's Y
    /// [T, directions, B, hidden] (when `outputs`) and its Y_h [directions, B, hidden]; between layers Y becomes the
    /// next input [T, B, directions·hidden], the directions side by side as PyTorch joins them.
    static func emit(_ lstm: LSTM, input x: String, prefix: String, outputs: Bool,
                     graph g: inout ONNXGraph) -> (y: String?, yH: String) {
        let h = lstm.hiddenSize, dirs = lstm.directions
        var seq = x
        for layer in 0..<lstm.numLayers {
            let (w, r, b, inputSize) = weights(lstm, layer: layer)
            let name = "\(prefix).l\(layer)"
            let wName = g.weight(name + ".W", shape: [dirs, 4 * h, inputSize], values: w)
            let rName = g.weight(name + ".R", shape: [dirs, 4 * h, h], values: r)
            let bName = g.weight(name + ".B", shape: [dirs, 8 * h], values: b)
            let last = layer == lstm.numLayers - 1
            let wantY = outputs || !last
            let names = [wantY ? g.fresh(name + ".Y") : "", g.fresh(name + ".Y_h")]
            g.node("LSTM", [seq, wName, rName, bName], hint: name, named: names, attributes: [
                .int("hidden_size", h), .string("direction", lstm.bidirectional ? "bidirectional" : "forward"),
                .int("layout", 0),
            ])
            if last { return (wantY ? names[0] : nil, names[1]) }
            // [T, dirs, B, h] → [T, B, dirs, h] → [T, B, dirs·h].
            seq = g.reshape(g.transpose(names[0], [0, 2, 1, 3], hint: name + ".Y_tbdh"), [0, 0, -1],
                            hint: name + ".out")
        }
        fatalError("unreachable: an LSTM has at least one layer")
    }

    /// The final hidden states of the last layer's directions side by side, [B, directions·hidden] (forward, then
    /// backward: `finalFeatures` and the refiner's reading of h).
    static func finalStates(_ yH: String, _ lstm: LSTM, prefix: String, graph g: inout ONNXGraph) -> String {
        let h = lstm.hiddenSize * lstm.directions
        let batchMajor = lstm.bidirectional ? g.transpose(yH, [1, 0, 2], hint: prefix + ".h_bdh") : yH
        return g.reshape(batchMajor, [-1, h], hint: prefix + ".h")
    }
}
