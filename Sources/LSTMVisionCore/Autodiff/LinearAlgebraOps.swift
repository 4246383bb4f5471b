/// Matrix operations with their backward passes: `matmul` and the affine `linear`.

/// a[m×k] · b[k×n].
public func matmul(_ a: Variable, _ b: Variable) -> Variable {
    let y = a.value.matmul(b.value)
    return Autograd.result(y, inputs: [a, b]) { dy in
        [a.needsGrad ? dy.matmul(b.value, transposeOther: true) : nil,   // dA = dY · Bᵀ
         b.needsGrad ? a.value.matmul(dy, transposeSelf: true) : nil]    // dB = Aᵀ · dY
    }
}

/// y[N×out] = x[N×in] · Wᵀ + b, with W [out×in] and b [out] as in `torch.nn.functional.linear`.
public func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
    precondition(x.value.rank == 2, "linear: input must be [batch, features], got \(x.shape)")
    precondition(weight.value.rank == 2 && weight.shape[1] == x.shape[1],
                 "linear: input \(x.shape) does not match weight \(weight.shape) "
                 + "(expects [batch, \(weight.value.rank == 2 ? weight.shape[1] : -1)])")
    var y = x.value.matmul(weight.value, transposeOther: true)
    let n = y.shape[0], out = y.shape[1]
    if let b = bias {
        precondition(b.shape == [out], "linear: bias \(b.shape) does not match \(out) outputs")
        y.scalars.withUnsafeMutableBufferPointer { yp in
            b.value.scalars.withUnsafeBufferPointer { bp in
                for r in 0..<n { for c in 0..<out { yp[r * out + c] += bp[c] } }
            }
        }
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Autograd.result(y, inputs: inputs) { dy in
        var grads: [Tensor?] = [
            x.needsGrad ? dy.matmul(weight.value) : nil,                      // dX = dY · W
            weight.needsGrad ? dy.matmul(x.value, transposeSelf: true) : nil, // dW = dYᵀ · X
        ]
        if let b = bias { grads.append(b.needsGrad ? dy.sumRows() : nil) }    // db = Σ_rows dY
        return grads
    }
}

extension Variable {
    /// The rank-2 value as SmallGEMM's packed B (`SmallGEMM.pack`), kept until the value changes.
    public func packedForSmallGEMM(transposed: Bool) -> AlignedFloats {
        derived(transposed ? "SmallGEMM.packedT" : "SmallGEMM.packed") { SmallGEMM.pack($0, transposed: transposed) }
    }
}
