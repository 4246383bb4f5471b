import Foundation
import LSTMVisionProtos

/// The classifiers as ONNX graphs: `images` [N, H, W·C] in, logits `outputs` [N, classes] out, N dynamic.
enum ONNXClassifiers {
    /// `patchSequence` as ONNX: images [N, H, W·C] → [N, (H/k)·(W/k), k·k·C], patches in raster order, features
    /// (row, column, channel) within a patch.
    static func patches(_ images: String, height: Int, width: Int, channels c: Int, patch k: Int, hint: String,
                        graph g: inout ONNXGraph) -> String {
        let gh = height / k, gw = width / k
        let split = g.reshape(images, [-1, gh, k, gw, k, c], hint: hint + ".split")         // [N, gy, dy, gx, dx, c]
        let ordered = g.transpose(split, [0, 1, 3, 2, 4, 5], hint: hint + ".ordered")       // [N, gy, gx, dy, dx, c]
        return g.reshape(ordered, [-1, gh * gw, k * k * c], hint: hint)
    }

    /// A `ReNetLayer` on a grid [N, rows·columns, F] (cells in raster order) → [N, rows·columns, 2·hidden].
    static func renetLayer(_ layer: ReNetLayer, _ grid: String, rows gi: Int, columns gj: Int, prefix: String,
                           graph g: inout ONNXGraph) -> String {
        let f = layer.vertical.inputSize, h = layer.vertical.hiddenSize
        // Down the columns: time = grid row, batch (N, column).
        let cells = g.reshape(grid, [-1, gi, gj, f], hint: prefix + ".grid")                        // [N, I, J, F]
        let byRow = g.transpose(cells, [1, 0, 2, 3], hint: prefix + ".by_row")                       // [I, N, J, F]
        let vIn = g.reshape(byRow, [gi, -1, f], hint: prefix + ".vertical.in")                       // [I, N·J, F]
        let vY = ONNXLSTM.emit(layer.vertical, input: vIn, prefix: prefix + ".vertical", outputs: true, graph: &g).y!
        // [I, 2, N·J, h] → [I, 2, N, J, h] → [J, N, I, 2, h] → [J, N·I, 2h]: along the rows, time = column.
        let vSplit = g.reshape(vY, [gi, 2, -1, gj, h], hint: prefix + ".vertical.split")
        let hOrdered = g.transpose(vSplit, [3, 2, 0, 1, 4], hint: prefix + ".by_column")
        let hIn = g.reshape(hOrdered, [gj, -1, 2 * h], hint: prefix + ".horizontal.in")
        let hY = ONNXLSTM.emit(layer.horizontal, input: hIn, prefix: prefix + ".horizontal", outputs: true,
                               graph: &g).y!
        // [J, 2, N·I, h] → [J, 2, N, I, h] → [N, I, J, 2, h] → [N, I·J, 2h].
        let hSplit = g.reshape(hY, [gj, 2, -1, gi, h], hint: prefix + ".horizontal.split")
        let back = g.transpose(hSplit, [2, 3, 0, 1, 4], hint: prefix + ".cells")
        return g.reshape(back, [-1, gi * gj, 2 * h], hint: prefix + ".out")
    }

    /// The graph of a row or patch LSTM classifier.
    static func sequence(_ m: SequenceClassifier, graph g: inout ONNXGraph, images: String) -> String {
        let c = m.config
        let seq = c.kind == .row
            ? images
            : patches(images, height: c.height, width: c.width, channels: c.channels, patch: c.patch,
                      hint: "patches", graph: &g)
        let timeMajor = g.transpose(seq, [1, 0, 2], hint: "steps")                              // [T, N, F]
        let yH = ONNXLSTM.emit(m.lstm, input: timeMajor, prefix: "lstm", outputs: false, graph: &g).yH
        let h = ONNXLSTM.finalStates(yH, m.lstm, prefix: "lstm", graph: &g)
        return g.linear(h, m.fc, prefix: "fc")
    }

    /// The graph of a ReNet classifier.
    static func renet(_ m: ReNet, graph g: inout ONNXGraph, images: String) -> String {
        let c = m.config, gh = c.height / c.patch, gw = c.width / c.patch
        var grid = patches(images, height: c.height, width: c.width, channels: c.channels, patch: c.patch,
                           hint: "patches", graph: &g)
        for (k, sweep) in m.sweeps.enumerated() {
            grid = renetLayer(sweep, grid, rows: gh, columns: gw, prefix: "renet.\(k)", graph: &g)
        }
        var x = g.reshape(grid, [-1, gh * gw * 2 * c.hidden], hint: "flat")
        if let fc1 = m.fc1 { x = g.apply("Relu", [g.linear(x, fc1, prefix: "fc1")], hint: "fc1.relu") }
        return g.linear(x, m.fc, prefix: "fc")
    }
}
