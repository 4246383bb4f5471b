import Foundation
import SwiftProtobuf
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// ONNX export: the graph's structure read back from its bytes, the LSTM weights against ONNX's LSTM equations, and
/// the errors. (ONNX Runtime's outputs on every model kind: tools/onnx-check.sh, run by `make test`.)
@Suite struct ONNXExportTests {
    /// Serialises and decodes again, as a runtime reads the file.
    func roundTrip(_ m: Onnx_ModelProto) throws -> Onnx_ModelProto {
        try Onnx_ModelProto(serializedBytes: try ONNXExport.serialized(m))
    }

    func initializer(_ g: Onnx_GraphProto, _ name: String) throws -> Onnx_TensorProto {
        try #require(g.initializer.first { $0.name == name }, "no initializer \(name)")
    }

    func floats(_ t: Onnx_TensorProto) -> [Float] {
        t.rawData.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.load(fromByteOffset: 4 * $0,
                                                                                     as: UInt32.self))) }
        }
    }

    func attribute(_ n: Onnx_NodeProto, _ name: String) -> Onnx_AttributeProto? {
        n.attribute.first { $0.name == name }
    }

    func dims(_ v: Onnx_ValueInfoProto) -> [String] {
        v.type.tensorType.shape.dim.map { d in
            if case let .dimParam(s)? = d.value { return s }
            return String(d.dimValue)
        }
    }

    @Test func stackedBidirectionalPatchClassifier() throws {
        let config = ModelConfig(kind: .patch, height: 28, width: 28, hidden: 6, layers: 2, bidirectional: true,
                                 patch: 4)
        let model = try makeClassifier(config, seed: 3) as! SequenceClassifier
        let m = try roundTrip(try ONNXExport.model(for: model))
        #expect(m.irVersion == 8 && m.opsetImport.map(\.version) == [17])
        let g = m.graph
        #expect(g.input.map(\.name) == ["images"] && dims(g.input[0]) == ["N", "28", "28"])
        #expect(g.output.map(\.name) == ["outputs"] && dims(g.output[0]) == ["N", "10"])
        let lstms = g.node.filter { $0.opType == "LSTM" }
        #expect(lstms.count == 2)
        #expect(!g.node.contains { ["Loop", "Scan"].contains($0.opType) })
        for (layer, node) in lstms.enumerated() {
            #expect(attribute(node, "direction")?.s == Data("bidirectional".utf8))
            #expect(attribute(node, "hidden_size")?.i == 6 && attribute(node, "layout")?.i == 0)
            let (w, r, b) = (try initializer(g, node.input[1]), try initializer(g, node.input[2]),
                             try initializer(g, node.input[3]))
            let inputs = layer == 0 ? 16 : 12
            #expect(w.dims == [2, 24, Int64(inputs)] && r.dims == [2, 24, 6] && b.dims == [2, 48])
            // Gate blocks: ONNX (i, o, f, c) = PyTorch (i, o, f, g) blocks 0, 3, 1, 2; backward direction second.
            let cells = model.lstm.cells[layer], wv = floats(w), bv = floats(b)
            for (d, cell) in cells.enumerated() {
                let torch = cell.weightIH.value.scalars, block = 6 * inputs, base = d * 4 * block
                for (k, src) in [0, 3, 1, 2].enumerated() {
                    #expect(Array(wv[(base + k * block)..<(base + (k + 1) * block)])
                            == Array(torch[(src * block)..<((src + 1) * block)]))
                }
                // B = [W_b, R_b] per direction: R_b's forget gate (ONNX block 2) is PyTorch's block 1 of bias_hh.
                #expect(Array(bv[(d * 48 + 24 + 12)..<(d * 48 + 24 + 18)])
                        == Array(cell.biasHH.value.scalars[6..<12]))
            }
        }
    }

    @Test func gatePermutationInvertsAndMovesBlocks() {
        let values = (0..<(8 * 3)).map(Float.init)                    // hidden 2: 4 blocks of 2 rows × 3 columns
        let onnx = ONNXLSTM.permuteGates(values, rows: 8, columns: 3)
        #expect(Array(onnx[0..<6]) == Array(values[0..<6]))            // i
        #expect(Array(onnx[6..<12]) == Array(values[18..<24]))         // o
        #expect(Array(onnx[12..<18]) == Array(values[6..<12]))         // f
        #expect(Array(onnx[18..<24]) == Array(values[12..<18]))        // c (PyTorch's g)
        #expect(ONNXLSTM.unpermuteGates(onnx, rows: 8, columns: 3) == values)
    }

    /// The exported W, R, B through ONNX's LSTM equations (operators.md: i, o, f, c; B = [Wb, Rb]; the backward
    /// direction reads the sequence from its end) give the module's final states.
    @Test func exportedWeightsFollowONNXLSTMEquations() throws {
        var gen = SeededGenerator(seed: 11)
        let lstm = LSTM(inputSize: 3, hiddenSize: 4, bidirectional: true, batchFirst: false, generator: &gen)
        let T = 5, B = 2, H = 4, I = 3
        let x = Tensor.uniform([T, B, I], low: -1, high: 1, generator: &gen)
        let expected = Autograd.withoutGradients { lstm.finalStates(Variable(x)).h.value }    // [2, B, H]
        let (w, r, b, _) = ONNXLSTM.weights(lstm, layer: 0)
        func sigmoid(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
        var worst: Float = 0
        for d in 0..<2 {
            for n in 0..<B {
                var h = [Float](repeating: 0, count: H), c = h
                for step in 0..<T {
                    let t = d == 0 ? step : T - 1 - step
                    // Gate pre-activations in ONNX's order: Xt·Wᵀ + Ht-1·Rᵀ + Wb + Rb.
                    let z = (0..<(4 * H)).map { row -> Float in
                        var s = b[d * 8 * H + row] + b[d * 8 * H + 4 * H + row]
                        for k in 0..<I { s += x.scalars[(t * B + n) * I + k] * w[(d * 4 * H + row) * I + k] }
                        for k in 0..<H { s += h[k] * r[(d * 4 * H + row) * H + k] }
                        return s
                    }
                    for j in 0..<H {
                        let i = sigmoid(z[j]), o = sigmoid(z[H + j]), f = sigmoid(z[2 * H + j]), g = tanhf(z[3 * H + j])
                        c[j] = f * c[j] + i * g
                        h[j] = o * tanhf(c[j])
                    }
                }
                for j in 0..<H { worst = max(worst, abs(h[j] - expected.scalars[(d * B + n) * H + j])) }
            }
        }
        print("  ONNX LSTM equations vs LSTM.finalStates: max |Δ| = \(worst)")
        #expect(worst < 1e-5)
    }

    @Test func detectorWithRefinerHasItsInputsOutputsAndLSTMs() throws {
        let config = DetectorConfig(encoder: .convRenet, convWidths: [4, 6, 8], renetWidths: [5, 5], hidden: 8,
                                    fineFeatures: true, refiner: BoxRefiner.Config(cropSize: 8, hidden: 4))
        let detector = try LSTMDetector.make(config, seed: 1)
        let g = try roundTrip(try ONNXExport.model(for: detector, opset: 14)).graph
        #expect(g.input.map(\.name) == ["images", "crops_by_rows", "crops_by_columns"])
        #expect(dims(g.input[0]) == ["N", "64", "64"] && dims(g.input[1]) == ["8", "M", "16"])
        #expect(g.output.map(\.name) == ["outputs", "refiner_outputs"])
        #expect(dims(g.output[0]) == ["3", "N_cells", "16"] && dims(g.output[1]) == ["M", "15"])
        let lstms = g.node.filter { $0.opType == "LSTM" }
        // Two sweeps of two LSTMs, the decoder, the refiner's rows and columns.
        #expect(lstms.count == 7)
        let directions = lstms.map { String(decoding: attribute($0, "direction")?.s ?? Data(), as: UTF8.self) }
        #expect(directions == Array(repeating: "bidirectional", count: 4) + ["forward"]
                + Array(repeating: "bidirectional", count: 2))
        #expect(g.node.filter { $0.opType == "Conv" }.count == 3 && g.node.filter { $0.opType == "MaxPool" }.count == 3)
        #expect(!g.node.contains { ["Loop", "Scan"].contains($0.opType) })
        let decoder = try initializer(g, lstms[4].input[1])
        #expect(decoder.dims == [1, 32, Int64(config.featureSize)])
    }

    /// A classifier kind the exporter does not know.
    final class Unmapped: Classifier {
        let config = ModelConfig()
        var training = false
        var precision = Precision.fp32
        var namedParameters: NamedParameters { [] }
        func callAsFunction(_ images: Variable) -> Variable { images }
    }

    @Test func refusesOpsetsOutsideTheRangeAndUnknownKinds() throws {
        let model = try makeClassifier(ModelConfig(hidden: 4), seed: 1)
        for opset in [13, 23] {
            #expect(throws: ONNXExportError.unsupportedOpset(opset)) { try ONNXExport.model(for: model, opset: opset) }
        }
        #expect(ONNXExportError.unsupportedOpset(9).description
                == "opset 9 is not supported: export writes opsets 14...22 (default 17)")
        #expect(throws: ONNXExportError.self) { try ONNXExport.model(for: Unmapped()) }
        #expect([14, 15, 18, 19, 20, 21, 22].map(ONNXExport.irVersion) == [7, 8, 8, 9, 9, 10, 10])
    }

    // The command line.

    static let folder: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Where the failing exports point (their own folder: the other test's temporary files are not theirs).
    static let badFolder: String = {
        let dir = folder + "/bad"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    @Test func exportsAModelWithSamples() throws {
        let out = Self.folder + "/row.onnx"
        let r = try CLITests().run(["export", "--model", "row-1x128", "--out", out, "--samples", "3"])
        #expect(r.code == 0, "\(r.err)")
        let m = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(m.graph.node.filter { $0.opType == "LSTM" }.count == 1)
        let samples = try SafeTensors.read(Self.folder + "/row.samples.safetensors").tensors
        #expect(samples["input"]?.shape == [3, 28, 28] && samples["output"]?.shape == [3, 10])
        // The input is the MNIST test split's first images; the output the model's logits for them.
        let test = try MNIST.load(directory: MNIST.defaultDirectory(), split: .test).prefix(3)
        #expect(samples["input"]?.scalars == test.pixels)
        let model = try ModelFile.load(FileFormatTests.repoRoot + "/models/row-1x128.safetensors")
        let logits = Autograd.withoutGradients { model(Variable(samples["input"]!)).value }
        #expect(samples["output"].map { $0.maxAbsDifference(logits) } == 0)
    }

    @Test(arguments: [
        (["--model", "README.md", "--out", "x.onnx"], "README.md: not a valid safetensors file"),
        (["--model", CLITests.fixtures + "/lstm_1layer.safetensors", "--out", "x.onnx"], "not a classifier checkpoint"),
        (["--model", "row-1x128", "--out", "/nonexistent/dir/x.onnx"], "/nonexistent/dir/x.onnx: cannot create"),
        (["--model", "row-1x128", "--out", "x.onnx", "--opset", "13"], "opset 13 is not supported: export writes"
            + " opsets 14...22 (default 17)"),
        (["--model", "row-1x128", "--out", "/tmp"], "/tmp: is a folder"),
        (["--model", "row-1x128", "--out", "x.onnx", "--images", "/tmp"], "give --samples N too"),
        (["--model", "row-1x128", "--out", "x.onnx", "--samples", "2", "--annotations", "a.json"],
         "--annotations chooses a detector's samples"),
        (["--model", "row-1x128", "--out", "x.onnx", "--samples", "2", "--images", "/nonexistent"],
         "/nonexistent: no such folder"),
    ])
    func badInputGivesOneLineAndNoFile(_ args: [String], _ message: String) throws {
        let args = args.map { $0 == "x.onnx" ? Self.badFolder + "/bad.onnx" : $0 }
        let r = try CLITests().run(["export"] + args)
        #expect(r.code != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && r.err.contains(message), "\(r.err)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: Self.badFolder)) ?? ["unreadable"]
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
