/// Elementwise operations and activations with their backward passes.

/// Elementwise sum of two variables of one shape.
public func + (a: Variable, b: Variable) -> Variable {
    Autograd.result(a.value + b.value, inputs: [a, b]) { dy in [dy, dy] }
}

/// Elementwise product of two variables of one shape.
public func * (a: Variable, b: Variable) -> Variable {
    Autograd.result(a.value * b.value, inputs: [a, b]) { dy in
        [a.needsGrad ? dy * b.value : nil, b.needsGrad ? dy * a.value : nil]
    }
}

/// Variable times a constant.
public func * (a: Variable, s: Float) -> Variable {
    Autograd.result(a.value * s, inputs: [a]) { dy in [dy * s] }
}

/// max(x, 0); the gradient at 0 is 0, as in PyTorch.
public func relu(_ x: Variable) -> Variable {
    let y = mapTensor(x.value) { $0.replacing(with: 0, where: $0 .< 0) }   // NaN stays NaN
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = dy
        dx.scalars.withUnsafeMutableBufferPointer { d in
            y.scalars.withUnsafeBufferPointer { v in
                guard let db = d.baseAddress, let vb = v.baseAddress else { return }
                var i = 0
                while i + 16 <= d.count {   // dx = dy where y > 0 (NaN too), else 0
                    VectorMath.store(VectorMath.load(db + i).replacing(with: 0, where: VectorMath.load(vb + i) .<= 0),
                                     db + i)
                    i += 16
                }
                for i in i..<d.count where vb[i] <= 0 { db[i] = 0 }
            }
        }
        return [dx]
    }
}

/// Applies a vectorised map to a tensor.
func mapTensor(_ x: Tensor, _ f: (VectorMath.V) -> VectorMath.V) -> Tensor {
    var y = x
    y.scalars.withUnsafeMutableBufferPointer { p in
        guard let base = p.baseAddress else { return }
        VectorMath.map(base, base, p.count, f)
    }
    return y
}

/// Hyperbolic tangent; dx = dy · (1 − y²).
public func tanh(_ x: Variable) -> Variable {
    let y = mapTensor(x.value, VectorMath.tanh)
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = dy
        for i in 0..<dx.count { dx.scalars[i] *= 1 - y.scalars[i] * y.scalars[i] }
        return [dx]
    }
}

/// Logistic sigmoid; dx = dy · y · (1 − y).
public func sigmoid(_ x: Variable) -> Variable {
    let y = mapTensor(x.value, VectorMath.sigmoid)
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = dy
        for i in 0..<dx.count { dx.scalars[i] *= y.scalars[i] * (1 - y.scalars[i]) }
        return [dx]
    }
}

/// Inverted dropout: in training, zeroes each element with probability `p` and scales the rest by 1/(1−p).
public func dropout(_ x: Variable, probability p: Float, training: Bool,
                    generator: inout SeededGenerator) -> Variable {
    precondition(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got \(p)")
    guard training, p > 0 else { return x }
    let keep = 1 / (1 - p)
    var mask = Tensor(zeros: x.shape)
    for i in 0..<mask.count { mask.scalars[i] = generator.uniform() < p ? 0 : keep }
    return Autograd.result(x.value * mask, inputs: [x]) { dy in [dy * mask] }
}

extension Variable {
    /// Sum of all elements, as a scalar; the gradient broadcasts back.
    public func sum() -> Variable {
        let shape = value.shape
        return Autograd.result(Tensor(scalar: value.sum()), inputs: [self]) { dy in
            [Tensor(repeating: dy.scalar, shape: shape)]
        }
    }
}
