import Foundation
import LSTMVisionProtos

/// `LSTMDetector` as an ONNX graph up to its raw outputs (`outputs` [K, N·cells, 6 + classes], as
/// `LSTMDetector.callAsFunction` gives them), and its `BoxRefiner` on crops (`crops_by_rows`, `crops_by_columns`
/// [S, M, S·(C + 1)] → `refiner_outputs` [M, classes + 5]); the post-processing stays outside (docs/onnx.md).
enum ONNXDetector {
    /// The encoder and decoder on `images` [N, H, W·C]; returns the name of the raw outputs.
    static func detector(_ m: LSTMDetector, graph g: inout ONNXGraph, images: String) -> String {
        let c = m.config, K = c.maxBoxes
        var grid: String?                                                // [N, cells, C'] from the convolutions
        var fine: String?                                                // [N·cells, 4C'']
        if c.encoder.hasConvolutions {
            // HWC rows → NCHW.
            var x = c.channels == 1
                ? g.reshape(images, [-1, 1, c.height, c.width], hint: "nchw")
                : g.transpose(g.reshape(images, [-1, c.height, c.width, c.channels], hint: "nhwc"), [0, 3, 1, 2],
                              hint: "nchw")
            for (i, conv) in m.convolutions.enumerated() {
                // LSTMDetector's parameter names: nn.Sequential indices of (conv, ReLU, MaxPool2d) per pooling stage.
                let pooled = min(i, c.poolingStages), prefix = "encoder.\(3 * pooled + 2 * (i - pooled))"
                let w = g.weight("\(prefix).weight", shape: conv.weight.shape, values: conv.weight.value.scalars)
                let b = conv.bias.map { g.weight("\(prefix).bias", shape: $0.shape, values: $0.value.scalars) }
                x = g.apply("Conv", [x, w] + (b.map { [$0] } ?? []), hint: prefix, attributes: [
                    .ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1]), .ints("strides", [1, 1]),
                ])
                x = g.apply("Relu", [x], hint: "\(prefix).relu")
                if c.fineFeatures && i == c.poolingStages - 1 { fine = cellBlocks(x, channels: conv.outChannels,
                                                                                  config: c, graph: &g) }
                if i < c.poolingStages {
                    x = g.apply("MaxPool", [x], hint: "\(prefix).pool", attributes: [
                        .ints("kernel_shape", [2, 2]), .ints("strides", [2, 2]),
                    ])
                }
            }
            let flat = g.reshape(x, [0, 0, -1], hint: "conv.flat")                           // [N, C', cells]
            grid = g.transpose(flat, [0, 2, 1], hint: "conv.cells")                            // [N, cells, C']
        }
        if c.encoder.hasSweeps {
            let patches = ONNXClassifiers.patches(images, height: c.height, width: c.width, channels: c.channels,
                                                  patch: c.stride, hint: "cell_pixels", graph: &g)
            var context = grid.map { g.concat([patches, $0], axis: 2, hint: "sweep.in") } ?? patches
            let prefix = c.encoder == .renet ? "encoder" : "context"
            for (k, sweep) in m.sweeps.enumerated() {
                context = ONNXClassifiers.renetLayer(sweep, context, rows: c.gridHeight, columns: c.gridWidth,
                                                     prefix: "\(prefix).\(k)", graph: &g)
            }
            grid = grid.map { g.concat([$0, context], axis: 2, hint: "features") } ?? context
        }
        let cells = g.reshape(grid!, [1, -1, c.featureSize], hint: "cells")                      // [1, N·cells, F]
        let repeats = g.int64s("steps.repeats", [K, 1, 1])
        let steps = g.apply("Tile", [cells, repeats], hint: "steps")                              // [K, N·cells, F]
        let y = ONNXLSTM.emit(m.lstm, input: steps, prefix: "decoder.lstm", outputs: true, graph: &g).y!
        var parts = [g.reshape(y, [K, -1, c.hidden], hint: "decoder.out")]                     // [K, N·cells, h]
        if c.skipFeatures { parts.append(steps) }
        if let fine {
            let one = g.reshape(fine, [1, -1, c.fineFeatureSize], hint: "fine.step")
            parts.append(g.apply("Tile", [one, repeats], hint: "fine.steps"))
        }
        let joined = g.reshape(g.concat(parts, axis: 2, hint: "head.in"), [-1, c.headInputSize], hint: "head.rows")
        return g.reshape(g.linear(joined, m.head, prefix: "head"), [K, -1, c.outputsPerStep], hint: "raw")
    }

    /// `LSTMDetector.cellBlocks`: the 2×2 block of a [N, C, 2·gh, 2·gw] map under each cell, [N·cells, 4C] with
    /// the features ordered (column in the block, row in the block, channel).
    static func cellBlocks(_ x: String, channels ch: Int, config c: DetectorConfig,
                           graph g: inout ONNXGraph) -> String {
        // [N, c, gy, sy, gx, sx] → [N, gy, gx, sx, sy, c].
        let split = g.reshape(x, [-1, ch, c.gridHeight, 2, c.gridWidth, 2], hint: "fine.split")
        let ordered = g.transpose(split, [0, 2, 4, 5, 3, 1], hint: "fine.ordered")
        return g.reshape(ordered, [-1, 4 * ch], hint: "fine")
    }

    /// The refiner on its two time-major readings of the crops; returns the name of its outputs [M, classes + 5].
    static func refiner(_ r: BoxRefiner, graph g: inout ONNXGraph, byRows: String, byColumns: String) -> String {
        let rows = ONNXLSTM.emit(r.rows, input: byRows, prefix: "refiner.rows", outputs: false, graph: &g).yH
        let columns = ONNXLSTM.emit(r.columns, input: byColumns, prefix: "refiner.columns", outputs: false,
                                    graph: &g).yH
        let features = g.concat([ONNXLSTM.finalStates(rows, r.rows, prefix: "refiner.rows", graph: &g),
                                 ONNXLSTM.finalStates(columns, r.columns, prefix: "refiner.columns", graph: &g)],
                                axis: 1, hint: "refiner.features")                                // [M, 4h]
        return g.linear(features, r.head, prefix: "refiner.head")
    }
}
