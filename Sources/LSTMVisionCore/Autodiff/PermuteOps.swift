/// Axis permutation (`torch.permute` followed by `contiguous`) and a range of the first axis (`x[a:b]`), with
/// their backward passes: the frame predictor's patch layout and its context steps.

/// The tensor with its axes reordered: output axis d is input axis `axes[d]`.
public func permute(_ x: Tensor, _ axes: [Int]) -> Tensor {
    precondition(axes.sorted() == Array(0..<x.rank), "permute: \(axes) is no permutation of \(x.rank) axes")
    let shape = axes.map { x.shape[$0] }
    var inStrides = [Int](repeating: 1, count: x.rank)
    for d in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[d] = inStrides[d + 1] * x.shape[d + 1] }
    let strides = axes.map { inStrides[$0] }   // input stride of each output axis
    var out = [Float](repeating: 0, count: x.count), index = [Int](repeating: 0, count: x.rank), from = 0
    for o in 0..<x.count {   // walks the output in order, carrying the input offset along
        out[o] = x.scalars[from]
        var d = x.rank - 1
        while d >= 0 {
            index[d] += 1; from += strides[d]
            if index[d] < shape[d] { break }
            from -= strides[d] * shape[d]; index[d] = 0; d -= 1
        }
    }
    return Tensor(shape: shape, scalars: out)
}

/// `permute` on a variable; the gradient is permuted back by the inverse permutation.
public func permute(_ x: Variable, _ axes: [Int]) -> Variable {
    var inverse = [Int](repeating: 0, count: axes.count)
    for (d, a) in axes.enumerated() { inverse[a] = d }
    return Autograd.result(permute(x.value, axes), inputs: [x]) { dy in [permute(dy, inverse)] }
}

/// Indices `range` of the first axis: [A, ...] → [range.count, ...].
public func sliceLeading(_ x: Variable, _ range: Range<Int>) -> Variable {
    precondition(range.lowerBound >= 0 && range.upperBound <= x.shape[0] && !range.isEmpty,
                 "sliceLeading: \(range) out of range for first axis of \(x.shape)")
    let n = x.value.count / x.shape[0], full = x.shape
    let y = Tensor(shape: [range.count] + full.dropFirst(),
                   scalars: Array(x.value.scalars[(range.lowerBound * n)..<(range.upperBound * n)]))
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = Tensor(zeros: full)
        dx.scalars.replaceSubrange((range.lowerBound * n)..<(range.upperBound * n), with: dy.scalars)
        return [dx]
    }
}
