/// Operations that move data without arithmetic: reshape, axis swap, concatenation, stacking, selection.

/// The same values in another shape.
public func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
    let old = x.shape
    return Autograd.result(x.value.reshaped(shape), inputs: [x]) { dy in [dy.reshaped(old)] }
}

/// Swaps the first two axes of a rank-3 tensor: [A, B, C] → [B, A, C] (batch-first ↔ time-major).
public func swapLeadingAxes(_ x: Variable) -> Variable {
    precondition(x.value.rank == 3, "swapLeadingAxes: needs rank 3, got \(x.shape)")
    return Autograd.result(swapLeadingAxes(x.value), inputs: [x]) { dy in [swapLeadingAxes(dy)] }
}

func swapLeadingAxes(_ x: Tensor) -> Tensor {
    let a = x.shape[0], b = x.shape[1], c = x.shape[2]
    var out = uninitializedFloats(x.count)   // every row copied below
    x.scalars.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            nonisolated(unsafe) let (src, dst) = (src.baseAddress, dst.baseAddress)
            // Rows of c shared among the threads when large: every training batch is swapped to time-major here,
            // between two parallel regions.
            Parallel.forItems(a, size: b * c) { part in
                for i in part {
                    for j in 0..<b { (dst! + (j * a + i) * c).update(from: src! + (i * b + j) * c, count: c) }
                }
            }
        }
    }
    return Tensor(shape: [b, a, c], scalars: out)
}

/// Concatenates tensors along their last axis (all other axes equal).
public func concatLast(_ xs: [Variable]) -> Variable {
    precondition(!xs.isEmpty, "concatLast: no inputs")
    if xs.count == 1 { return xs[0] }
    let lead = Array(xs[0].shape.dropLast())
    for x in xs {
        precondition(Array(x.shape.dropLast()) == lead,
                     "concatLast: shapes \(xs.map(\.shape)) differ before the last axis")
    }
    let widths = xs.map { $0.shape.last! }, total = widths.reduce(0, +), rows = lead.reduce(1, *)
    var out = uninitializedFloats(rows * total)   // every row gets each input's piece below
    out.withUnsafeMutableBufferPointer { o in
        var offset = 0
        for (x, w) in zip(xs, widths) {
            x.value.scalars.withUnsafeBufferPointer { xp in
                Parallel.copyRows(rows, width: w, from: xp.baseAddress!, stride: w, to: o.baseAddress! + offset,
                                  stride: total)
            }
            offset += w
        }
    }
    return Autograd.result(Tensor(shape: lead + [total], scalars: out), inputs: xs) { dy in
        var grads: [Tensor?] = []
        var off = 0
        for (x, w) in zip(xs, widths) {
            grads.append(x.needsGrad ? Tensor(shape: x.shape, scalars: dy.scalars.withUnsafeBufferPointer {
                Parallel.copy(rows, width: w, from: $0.baseAddress! + off, stride: total)
            }) : nil)
            off += w
        }
        return grads
    }
}

/// Stacks equal-shaped tensors along a new first axis.
public func stack(_ xs: [Variable]) -> Variable {
    precondition(!xs.isEmpty, "stack: no inputs")
    let shape = xs[0].shape
    for x in xs { precondition(x.shape == shape, "stack: shapes \(xs.map(\.shape)) differ") }
    let n = shape.reduce(1, *)
    let y = Tensor(shape: [xs.count] + shape, scalars: xs.flatMap(\.value.scalars))
    return Autograd.result(y, inputs: xs) { dy in
        (0..<xs.count).map { k in Tensor(shape: shape, scalars: Array(dy.scalars[(k * n)..<((k + 1) * n)])) }
    }
}

/// Concatenates tensors along their first axis (all other axes equal): [A_k, ...] → [ΣA_k, ...].
public func concatLeading(_ xs: [Variable]) -> Variable {
    precondition(!xs.isEmpty, "concatLeading: no inputs")
    let inner = Array(xs[0].shape.dropFirst()), n = inner.reduce(1, *)
    for x in xs {
        precondition(Array(x.shape.dropFirst()) == inner, "concatLeading: shapes \(xs.map(\.shape)) differ")
    }
    let counts = xs.map { $0.shape[0] }
    let y = Tensor(shape: [counts.reduce(0, +)] + inner, scalars: xs.flatMap(\.value.scalars))
    return Autograd.result(y, inputs: xs) { dy in
        var start = 0
        return counts.map { c in
            defer { start += c * n }
            return Tensor(shape: [c] + inner, scalars: Array(dy.scalars[start..<(start + c * n)]))
        }
    }
}

/// Selects index `i` of the first axis: [A, ...] → [...]; negative `i` counts from the end.
public func select(_ x: Variable, _ i: Int) -> Variable {
    let a = x.shape[0], k = i < 0 ? a + i : i
    precondition(k >= 0 && k < a, "select: index \(i) out of range for first axis of \(x.shape)")
    let inner = Array(x.shape.dropFirst()), n = inner.reduce(1, *)
    let y = Tensor(shape: inner, scalars: Array(x.value.scalars[(k * n)..<((k + 1) * n)]))
    let full = x.shape
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = Tensor(zeros: full)
        dx.scalars.replaceSubrange((k * n)..<((k + 1) * n), with: dy.scalars)
        return [dx]
    }
}

/// Swaps the last two axes of a rank-3 tensor: [A, B, C] → [A, C, B] (e.g. [N, channels, cells] feature
/// maps to [N, cells, channels] rows). The backward is the same swap of the gradient.
public func swapTrailingAxes(_ x: Variable) -> Variable {
    precondition(x.value.rank == 3, "swapTrailingAxes: needs rank 3, got \(x.shape)")
    return Autograd.result(swapTrailingAxes(x.value), inputs: [x]) { dy in [swapTrailingAxes(dy)] }
}

func swapTrailingAxes(_ x: Tensor) -> Tensor {
    let a = x.shape[0], b = x.shape[1], c = x.shape[2]
    var out = uninitializedFloats(x.count)   // every element written below
    x.scalars.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<a {   // 16×16 tiles, so that both the reads and the strided writes stay in cache
                let s = src.baseAddress! + i * b * c, d = dst.baseAddress! + i * b * c
                for j0 in stride(from: 0, to: b, by: 16) {
                    for k0 in stride(from: 0, to: c, by: 16) {
                        for j in j0..<min(j0 + 16, b) {
                            for k in k0..<min(k0 + 16, c) { d[k * b + j] = s[j * c + k] }
                        }
                    }
                }
            }
        }
    }
    return Tensor(shape: [a, c, b], scalars: out)
}

/// Repeats a tensor along a new leading axis: [B, F] → [count, B, F] (the same input at every time step
/// of a sequence). The backward sums the gradients of the copies.
public func repeatLeading(_ x: Variable, count: Int) -> Variable {
    precondition(count > 0, "repeatLeading: count must be positive, got \(count)")
    let n = x.value.count, shape = x.shape
    var out = uninitializedFloats(count * n)   // every copy written below
    for k in 0..<count { out.replaceSubrange((k * n)..<((k + 1) * n), with: x.value.scalars) }
    return Autograd.result(Tensor(shape: [count] + shape, scalars: out), inputs: [x]) { dy in
        var dx = [Float](repeating: 0, count: n)   // dx = Σ_k dy[k]
        dy.scalars.withUnsafeBufferPointer { d in
            for k in 0..<count { for i in 0..<n { dx[i] += d[k * n + i] } }
        }
        return [Tensor(shape: shape, scalars: dx)]
    }
}
