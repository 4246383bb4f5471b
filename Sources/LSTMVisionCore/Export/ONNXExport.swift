import Foundation
import LSTMVisionProtos
import SwiftProtobuf

/// Exports classifiers and detectors as ONNX models that ONNX Runtime runs (docs/onnx.md): the network up to its raw
/// outputs, recurrent layers as ONNX `LSTM` nodes, the batch dimension dynamic (`dim_param` "N"; "M" for the
/// refiner's crops).
public enum ONNXExport {
    /// Opset 17 (IR version 8): what ONNX Runtime 1.32 and onnx 1.23 run and check fully, and old enough for most
    /// deployed runtimes.
    public static let defaultOpset = 17
    /// The opsets offered: from 14, the first whose `LSTM` has `layout`, to 22; every operator used keeps its
    /// meaning across them.
    public static let opsets = 14...22

    /// The IR version that goes with `opset` (onnx's `helper.VERSION_TABLE`).
    public static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        default: return 10
        }
    }

    /// The names of the graphs' inputs and outputs.
    public static let imagesName = "images", outputsName = "outputs"
    public static let cropsByRowsName = "crops_by_rows", cropsByColumnsName = "crops_by_columns",
                      refinerOutputsName = "refiner_outputs"

    /// A classifier's graph: `images` [N, H, W·C] float32 (pixels as its preprocessing gives them) → logits
    /// `outputs` [N, classes].
    public static func model(for classifier: any Classifier, opset: Int = defaultOpset) throws -> Onnx_ModelProto {
        try check(opset)
        let c = classifier.config
        var g = ONNXGraph(name: "lstmvision_\(c.kind.rawValue)_classifier")
        let images = g.input(imagesName, [.symbolic("N"), .fixed(c.height), .fixed(c.width * c.channels)])
        let logits: String
        switch classifier {
        case let m as SequenceClassifier: logits = ONNXClassifiers.sequence(m, graph: &g, images: images)
        case let m as ReNet: logits = ONNXClassifiers.renet(m, graph: &g, images: images)
        default:
            throw ONNXExportError.unsupportedModel("\(type(of: classifier)) (\(c.kind.rawValue)) has no ONNX mapping")
        }
        g.node("Identity", [logits], hint: "outputs", named: [outputsName])
        g.output(outputsName, [.symbolic("N"), .fixed(c.classes)])
        return wrap(g, opset: opset, doc: "LSTMVision \(c.kind.rawValue) classifier: \(c.json())")
    }

    /// A detector's graph: `images` [N, H, W·C] float32 (pixels in [0, 1]) → raw `outputs`
    /// [K, N·cells, 6 + classes] as `LSTMDetector.callAsFunction` gives them; with a refiner also `crops_by_rows`,
    /// `crops_by_columns` [S, M, S·(C + 1)] (as `BoxRefiner.crops` builds them) → `refiner_outputs`
    /// [M, classes + 5].
    public static func model(for detector: LSTMDetector, opset: Int = defaultOpset) throws -> Onnx_ModelProto {
        try check(opset)
        let c = detector.config
        var g = ONNXGraph(name: "lstmvision_detector")
        let images = g.input(imagesName, [.symbolic("N"), .fixed(c.height), .fixed(c.width * c.channels)])
        let raw = ONNXDetector.detector(detector, graph: &g, images: images)
        g.node("Identity", [raw], hint: "outputs", named: [outputsName])
        g.output(outputsName, [.fixed(c.maxBoxes), .symbolic("N_cells"), .fixed(c.outputsPerStep)])
        if let r = detector.refiner {
            let s = r.config.cropSize, f = s * (c.channels + 1)
            let byRows = g.input(cropsByRowsName, [.fixed(s), .symbolic("M"), .fixed(f)])
            let byColumns = g.input(cropsByColumnsName, [.fixed(s), .symbolic("M"), .fixed(f)])
            let out = ONNXDetector.refiner(r, graph: &g, byRows: byRows, byColumns: byColumns)
            g.node("Identity", [out], hint: "refiner_outputs", named: [refinerOutputsName])
            g.output(refinerOutputsName, [.symbolic("M"), .fixed(c.classes + 5)])
        }
        return wrap(g, opset: opset, doc: "LSTMVision detector: \(c.json())")
    }

    /// Writes `model` atomically (a temporary file renamed into place): either the old file or the whole new one.
    public static func write(_ model: Onnx_ModelProto, to path: String) throws {
        try AtomicFile.write(try serialized(model), to: path)
    }

    /// The protobuf bytes of `model` (what `write` writes).
    public static func serialized(_ model: Onnx_ModelProto) throws -> Data {
        do { return try model.serializedData() } catch {
            throw ONNXExportError.unsupportedModel("cannot serialise the ONNX model: \(error)")
        }
    }

    static func check(_ opset: Int) throws {
        guard opsets.contains(opset) else { throw ONNXExportError.unsupportedOpset(opset) }
    }

    static func wrap(_ g: ONNXGraph, opset: Int, doc: String) -> Onnx_ModelProto {
        var m = Onnx_ModelProto()
        m.irVersion = Int64(irVersion(forOpset: opset))
        m.producerName = "lstmvision"
        m.docString = doc
        var set = Onnx_OperatorSetIdProto()
        set.domain = ""
        set.version = Int64(opset)
        m.opsetImport = [set]
        m.graph = g.graph
        return m
    }
}

/// Why a model cannot be exported.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    case unsupportedOpset(Int)
    case unsupportedModel(String)

    public var description: String {
        switch self {
        case let .unsupportedOpset(v):
            return "opset \(v) is not supported: export writes opsets \(ONNXExport.opsets.lowerBound)"
                + "...\(ONNXExport.opsets.upperBound) (default \(ONNXExport.defaultOpset))"
        case let .unsupportedModel(m): return m
        }
    }
}
