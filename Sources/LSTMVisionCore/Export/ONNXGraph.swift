import Foundation
import LSTMVisionProtos

/// A dimension of a graph input's or output's shape: a fixed size, or a named one left to the runtime (`dim_param`),
/// such as the batch.
public enum ONNXDimension: Equatable, Sendable {
    case fixed(Int)
    case symbolic(String)
}

/// A small builder of an ONNX graph on the generated `Onnx_*` types: float inputs and outputs, weight and shape
/// initializers, and nodes whose outputs get unique names from a hint.
struct ONNXGraph {
    private(set) var graph = Onnx_GraphProto()
    private var used: [String: Int] = [:]

    init(name: String) { graph.name = name }

    /// A fresh value name from `hint` (`hint`, then `hint_1`, `hint_2`, ...).
    mutating func fresh(_ hint: String) -> String {
        let n = used[hint, default: 0]
        used[hint] = n + 1
        return n == 0 ? hint : "\(hint)_\(n)"
    }

    /// A float32 graph input or output of `shape`.
    static func valueInfo(_ name: String, _ shape: [ONNXDimension]) -> Onnx_ValueInfoProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case let .fixed(v): dim.dimValue = Int64(v)
            case let .symbolic(s): dim.dimParam = s
            }
            return dim
        }
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType = tensor
        return info
    }

    mutating func input(_ name: String, _ shape: [ONNXDimension]) -> String {
        graph.input.append(Self.valueInfo(fresh(name), shape))
        return graph.input.last!.name
    }

    mutating func output(_ name: String, _ shape: [ONNXDimension]) {
        graph.output.append(Self.valueInfo(name, shape))
    }

    /// A float32 initializer (a weight) of `shape`, stored little-endian in `raw_data`.
    mutating func weight(_ hint: String, shape: [Int], values: [Float]) -> String {
        precondition(shape.reduce(1, *) == values.count, "ONNXGraph: \(hint) has \(values.count) values for \(shape)")
        var t = Onnx_TensorProto()
        t.name = fresh(hint)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.dims = shape.map(Int64.init)
        t.rawData = values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0) }
        graph.initializer.append(t)
        return t.name
    }

    /// An int64 initializer (a shape, permutation or repeat count), one-dimensional.
    mutating func int64s(_ hint: String, _ values: [Int]) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(hint)
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.dims = [Int64(values.count)]
        t.int64Data = values.map(Int64.init)
        graph.initializer.append(t)
        return t.name
    }

    /// Appends a node of `op` on `inputs` ("" for an optional input or output left out) and returns the names of its
    /// outputs: `outputs` of them, named from `hint`, or the names given in `named` ("" leaves one out).
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], hint: String, outputs: Int = 1, named: [String]? = nil,
                       attributes: [Onnx_AttributeProto] = []) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = fresh(hint + "/" + op)
        n.input = inputs
        n.output = named ?? (0..<outputs).map { _ in fresh(hint) }
        n.attribute = attributes
        graph.node.append(n)
        return n.output
    }

    /// One output of `op` on `inputs`.
    mutating func apply(_ op: String, _ inputs: [String], hint: String,
                        attributes: [Onnx_AttributeProto] = []) -> String {
        node(op, inputs, hint: hint, attributes: attributes)[0]
    }

    /// `Reshape` to `shape` (0 copies the input's dimension, -1 is inferred: how the batch stays dynamic).
    mutating func reshape(_ x: String, _ shape: [Int], hint: String) -> String {
        apply("Reshape", [x, int64s(hint + "/shape", shape)], hint: hint)
    }

    mutating func transpose(_ x: String, _ perm: [Int], hint: String) -> String {
        apply("Transpose", [x], hint: hint, attributes: [.ints("perm", perm)])
    }

    mutating func concat(_ xs: [String], axis: Int, hint: String) -> String {
        xs.count == 1 ? xs[0] : apply("Concat", xs, hint: hint, attributes: [.int("axis", axis)])
    }

    /// x·Wᵀ + b for x [M, in] and a `Linear` layer's weight [out, in] and bias [out] (ONNX `Gemm`, transB).
    mutating func linear(_ x: String, _ layer: Linear, prefix: String) -> String {
        let w = weight(prefix + ".weight", shape: layer.weight.shape, values: layer.weight.value.scalars)
        let b = layer.bias.map { weight(prefix + ".bias", shape: $0.shape, values: $0.value.scalars) }
        return apply("Gemm", [x, w] + (b.map { [$0] } ?? []), hint: prefix, attributes: [.int("transB", 1)])
    }
}

extension Onnx_AttributeProto {
    static func int(_ name: String, _ value: Int) -> Self {
        var a = Self()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Self {
        var a = Self()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func string(_ name: String, _ value: String) -> Self {
        var a = Self()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }
}
