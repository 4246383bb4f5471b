/// Rearranges [N, H, W·C] images into [N, (H/k)·(W/k), k·k·C] patch sequences in raster order
/// (features within a patch ordered row, column, channel); the backward is the inverse permutation.
public func patchSequence(_ x: Variable, height: Int, width: Int, channels: Int, patch k: Int) -> Variable {
    let n = x.shape[0], gh = height / k, gw = width / k, f = k * k * channels
    // index[j] = source offset (within one image) of destination element j.
    var index = [Int](repeating: 0, count: height * width * channels)
    var j = 0
    for pi in 0..<gh { for pj in 0..<gw { for dy in 0..<k { for dx in 0..<k { for ch in 0..<channels {
        index[j] = ((pi * k + dy) * width + pj * k + dx) * channels + ch
        j += 1
    } } } } }
    let per = index.count
    var out = [Float](repeating: 0, count: x.value.count)
    for b in 0..<n { for j in 0..<per { out[b * per + j] = x.value.scalars[b * per + index[j]] } }
    let shape = x.shape
    return Autograd.result(Tensor(shape: [n, gh * gw, f], scalars: out), inputs: [x]) { dy in
        var dx = [Float](repeating: 0, count: dy.count)
        for b in 0..<n { for j in 0..<per { dx[b * per + index[j]] = dy.scalars[b * per + j] } }
        return [Tensor(shape: shape, scalars: dx)]
    }
}
