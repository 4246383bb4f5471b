/// Convolution and max pooling on NCHW tensors with their backward passes, as `torch.nn.functional`'s
/// `conv2d` and `max_pool2d`. Convolution unfolds each image into columns (im2col) so that it is one
/// GEMM per image; the input gradient folds the column gradients back (col2im). Only one image's
/// unfolding exists at a time: the backward unfolds again instead of keeping the whole batch's.

/// The output length of a sliding window: ⌊(size + 2·padding − kernel) / stride⌋ + 1.
func slidingOutputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (size + 2 * padding - kernel) / stride + 1
}

/// The sizes of one image's unfolding.
struct ConvGeometry {
    let channels: Int, height: Int, width: Int
    let kernelH: Int, kernelW: Int, stride: Int, padding: Int
    var outH: Int { slidingOutputSize(height, kernel: kernelH, stride: stride, padding: padding) }
    var outW: Int { slidingOutputSize(width, kernel: kernelW, stride: stride, padding: padding) }
    /// Rows of the column matrix: C·kh·kw.
    var patch: Int { channels * kernelH * kernelW }
    /// Columns of the column matrix: H'·W'.
    var positions: Int { outH * outW }
}

/// ⌈a / b⌉ for b > 0 and any sign of a.
private func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

/// The output positions o of one axis whose input index o·stride + shift lies inside 0..<size, as lo..<hi:
/// the other positions read padding. Computing the range once per kernel offset keeps the bounds test out of
/// the inner loops of `im2col` and `col2im`, which then copy (stride 1) or gather contiguous runs.
func insideRange(size: Int, outputs: Int, shift: Int, stride: Int) -> Range<Int> {
    let lo = min(max(0, ceilDiv(-shift, stride)), outputs),
        hi = min(outputs, max(0, ceilDiv(size - shift, stride)))
    return lo..<max(lo, hi)
}

/// Unfolds one image x [C, H, W] into cols [C·kh·kw, H'·W']: row (c, i, j) holds, for every output
/// position (oy, ox), the input pixel (c, oy·stride − padding + i, ox·stride − padding + j), 0 outside.
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ cols: UnsafeMutablePointer<Float>) {
    let planeSize = g.height * g.width, rowsPerPlane = g.kernelH * g.kernelW
    for c in 0..<g.channels {
        im2colPlane(x + c * planeSize, g, cols + c * rowsPerPlane * g.positions, rowStride: g.positions)
    }
}

/// Unfolds one channel plane [H, W] (of the geometry `g`) into the kh·kw rows of its kernel offsets, each H'·W'
/// long and `rowStride` apart: rows of several images can so sit side by side in one column matrix.
func im2colPlane(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, _ rows: UnsafeMutablePointer<Float>,
                 rowStride: Int) {
    let oh = g.outH, ow = g.outW, s = g.stride
    for i in 0..<g.kernelH {
        let ys = insideRange(size: g.height, outputs: oh, shift: i - g.padding, stride: s)
        for j in 0..<g.kernelW {
            let row = rows + (i * g.kernelW + j) * rowStride
            let shift = j - g.padding, xs = insideRange(size: g.width, outputs: ow, shift: shift, stride: s)
            row.update(repeating: 0, count: ys.lowerBound * ow)
            for oy in ys {
                // Input pixel of output ox: ox·s + shift in row oy·s + i − padding, ≥ 0 from xs.lowerBound on.
                let out = row + oy * ow,
                    src = plane + (oy * s + i - g.padding) * g.width + xs.lowerBound * s + shift
                out.update(repeating: 0, count: xs.lowerBound)
                if s == 1 {
                    (out + xs.lowerBound).update(from: src, count: xs.count)
                } else {
                    for k in 0..<xs.count { out[xs.lowerBound + k] = src[k * s] }
                }
                (out + xs.upperBound).update(repeating: 0, count: ow - xs.upperBound)
            }
            (row + ys.upperBound * ow).update(repeating: 0, count: (oh - ys.upperBound) * ow)
        }
    }
}

/// The adjoint of `im2col`: adds each entry of cols [C·kh·kw, H'·W'] into the pixel of dx [C, H, W]
/// it was read from (padding entries are dropped).
func col2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>) {
    let planeSize = g.height * g.width, rowsPerPlane = g.kernelH * g.kernelW
    for c in 0..<g.channels {
        col2imPlane(cols + c * rowsPerPlane * g.positions, g, dx + c * planeSize, rowStride: g.positions)
    }
}

/// The adjoint of `im2colPlane`: adds the kh·kw rows (`rowStride` apart) into the plane they were read from.
func col2imPlane(_ rows: UnsafePointer<Float>, _ g: ConvGeometry, _ plane: UnsafeMutablePointer<Float>,
                 rowStride: Int) {
    let oh = g.outH, ow = g.outW, s = g.stride
    for i in 0..<g.kernelH {
        let ys = insideRange(size: g.height, outputs: oh, shift: i - g.padding, stride: s)
        for j in 0..<g.kernelW {
            let row = rows + (i * g.kernelW + j) * rowStride
            let shift = j - g.padding, xs = insideRange(size: g.width, outputs: ow, shift: shift, stride: s)
            guard !xs.isEmpty else { continue }
            for oy in ys {
                // dst[ox·s] is pixel ox·s + shift of input row oy·s + i − padding; the offset is ≥ 0 from
                // xs.lowerBound on.
                let src = row + oy * ow + xs.lowerBound
                let dst = plane + (oy * s + i - g.padding) * g.width + xs.lowerBound * s + shift
                if s == 1 {
                    for k in 0..<xs.count { dst[k] += src[k] }
                } else {
                    for k in 0..<xs.count { dst[k * s] += src[k] }
                }
            }
        }
    }
}

/// Checks conv2d's operand shapes and returns the geometry of one image.
private func convGeometry(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, stride: Int,
                          padding: Int) -> ConvGeometry {
    precondition(x.rank == 4, "conv2d: input must be [batch, channels, height, width], got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[1] == x.shape[1],
                 "conv2d: weight \(weight.shape) does not match input \(x.shape) "
                 + "(expects [out, \(x.shape[1]), kh, kw])")
    precondition(stride > 0 && padding >= 0,
                 "conv2d: stride must be positive and padding non-negative, got \(stride), \(padding)")
    if let bias {
        precondition(bias.shape == [weight.shape[0]],
                     "conv2d: bias \(bias.shape) does not match \(weight.shape[0]) outputs")
    }
    let g = ConvGeometry(channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                         kernelH: weight.shape[2], kernelW: weight.shape[3], stride: stride, padding: padding)
    precondition(g.kernelH > 0 && g.kernelW > 0 && g.outH > 0 && g.outW > 0,
                 "conv2d: kernel \(g.kernelH)×\(g.kernelW) does not fit input \(g.height)×\(g.width) "
                 + "with padding \(padding)")
    return g
}

/// 2-D convolution (cross-correlation, as PyTorch): x [N, C, H, W] ⋆ weight [O, C, kh, kw] + bias [O]
/// → [N, O, H', W'] with H' = ⌊(H + 2·padding − kh) / stride⌋ + 1 (likewise W'), zero padding.
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0) -> Variable {
    let g = convGeometry(x.value, weight.value, bias?.value, stride: stride, padding: padding)
    let N = x.shape[0], O = weight.shape[0], K = g.patch, L = g.positions
    let imageSize = g.channels * g.height * g.width
    // cols [K, L]: one image unfolded at a time (the backward unfolds again rather than keep N of them).
    var cols = [Float](repeating: 0, count: K * L)
    var y = [Float](repeating: 0, count: N * O * L)
    x.value.scalars.withUnsafeBufferPointer { xp in
    weight.value.scalars.withUnsafeBufferPointer { wp in
    cols.withUnsafeMutableBufferPointer { cp in
    y.withUnsafeMutableBufferPointer { yp in
        for n in 0..<N {
            let c = cp.baseAddress!, yn = yp.baseAddress! + n * O * L
            im2col(xp.baseAddress! + n * imageSize, g, c)
            if let bias {   // Y_n starts as the bias broadcast over positions, then += W · cols_n.
                for o in 0..<O { (yn + o * L).update(repeating: bias.value.scalars[o], count: L) }
            }
            // Y_n [O, L] = W [O, K] · cols_n [K, L]
            BLAS.gemm(transA: false, transB: false, m: O, n: L, k: K, a: wp.baseAddress!, lda: K,
                      b: c, ldb: L, beta: bias == nil ? 0 : 1, c: yn, ldc: L)
        }
    } } } }
    let output = Tensor(shape: [N, O, g.outH, g.outW], scalars: y)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Autograd.result(output, inputs: inputs) { dy in
        var dx = [Float](repeating: 0, count: x.needsGrad ? N * imageSize : 0)
        var dw = [Float](repeating: 0, count: weight.needsGrad ? O * K : 0)
        var cols = [Float](repeating: 0, count: weight.needsGrad ? K * L : 0)
        var dcols = [Float](repeating: 0, count: x.needsGrad ? K * L : 0)
        dy.scalars.withUnsafeBufferPointer { dyp in
        x.value.scalars.withUnsafeBufferPointer { xp in
        cols.withUnsafeMutableBufferPointer { cp in
        weight.value.scalars.withUnsafeBufferPointer { wp in
        dw.withUnsafeMutableBufferPointer { dwp in
        dx.withUnsafeMutableBufferPointer { dxp in
        dcols.withUnsafeMutableBufferPointer { dcp in
            for n in 0..<N {
                let dyn = dyp.baseAddress! + n * O * L
                if weight.needsGrad {   // dW [O, K] += dY_n [O, L] · cols_nᵀ [L, K]
                    im2col(xp.baseAddress! + n * imageSize, g, cp.baseAddress!)
                    BLAS.gemm(transA: false, transB: true, m: O, n: K, k: L, a: dyn, lda: L,
                              b: cp.baseAddress!, ldb: L, beta: n == 0 ? 0 : 1, c: dwp.baseAddress!, ldc: K)
                }
                if x.needsGrad {
                    // dcols_n [K, L] = Wᵀ [K, O] · dY_n [O, L], folded back into dX_n.
                    BLAS.gemm(transA: true, transB: false, m: K, n: L, k: O, a: wp.baseAddress!, lda: K,
                              b: dyn, ldb: L, beta: 0, c: dcp.baseAddress!, ldc: L)
                    col2im(dcp.baseAddress!, g, dxp.baseAddress! + n * imageSize)
                }
            }
        } } } } } } }
        var grads: [Tensor?] = [x.needsGrad ? Tensor(shape: x.shape, scalars: dx) : nil,
                                weight.needsGrad ? Tensor(shape: weight.shape, scalars: dw) : nil]
        if let bias {   // db[o] = Σ_n Σ_positions dY[n, o, ·]
            var db: Tensor?
            if bias.needsGrad {
                var sums = [Float](repeating: 0, count: O)
                dy.scalars.withUnsafeBufferPointer { d in
                    for n in 0..<N {
                        for o in 0..<O { sums[o] += d[((n * O + o) * L)..<((n * O + o + 1) * L)].reduce(0, +) }
                    }
                }
                db = Tensor(shape: [O], scalars: sums)
            }
            grads.append(db)
        }
        return grads
    }
}

/// Direct six-loop convolution with conv2d's semantics, the reference the im2col version is tested against.
func conv2dReference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
    let g = convGeometry(x, weight, bias, stride: stride, padding: padding)
    let N = x.shape[0], O = weight.shape[0], C = g.channels, H = g.height, W = g.width
    var y = Tensor(zeros: [N, O, g.outH, g.outW])
    for n in 0..<N { for o in 0..<O { for oy in 0..<g.outH { for ox in 0..<g.outW {
        var s = bias?.scalars[o] ?? 0
        for c in 0..<C { for i in 0..<g.kernelH { for j in 0..<g.kernelW {
            let iy = oy * stride - padding + i, ix = ox * stride - padding + j
            guard iy >= 0 && iy < H && ix >= 0 && ix < W else { continue }
            s += x.scalars[((n * C + c) * H + iy) * W + ix]
                * weight.scalars[((o * C + c) * g.kernelH + i) * g.kernelW + j]
        } } }
        y.scalars[((n * O + o) * g.outH + oy) * g.outW + ox] = s
    } } } }
    return y
}

/// 2-D max pooling without padding, as `torch.nn.functional.max_pool2d`: x [N, C, H, W] →
/// [N, C, H', W'] with H' = ⌊(H − kernel) / stride⌋ + 1. The gradient goes to the first maximum of each
/// window in row-major order (NaN wins, as in PyTorch); overlapping windows add up.
public func maxPool2d(_ x: Variable, kernel: Int, stride: Int) -> Variable {
    precondition(x.value.rank == 4, "maxPool2d: input must be [batch, channels, height, width], got \(x.shape)")
    precondition(kernel > 0 && stride > 0, "maxPool2d: kernel and stride must be positive, got \(kernel), \(stride)")
    let planes = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3]
    precondition(kernel <= H && kernel <= W, "maxPool2d: kernel \(kernel) does not fit input \(H)×\(W)")
    let oh = slidingOutputSize(H, kernel: kernel, stride: stride, padding: 0)
    let ow = slidingOutputSize(W, kernel: kernel, stride: stride, padding: 0)
    var y = [Float](repeating: 0, count: planes * oh * ow)
    // argmax [N·C·H'·W']: the flat input index each output was taken from. Planes are independent: shared among the
    // threads (the rest of a step often leaves one core idle here).
    var argmax = [Int](repeating: 0, count: y.count)
    x.value.scalars.withUnsafeBufferPointer { xp in
    y.withUnsafeMutableBufferPointer { yp in
    argmax.withUnsafeMutableBufferPointer { ap in
        nonisolated(unsafe) let (xb, yb, ab) = (xp.baseAddress!, yp.baseAddress!, ap.baseAddress!)
        Parallel.forItems(planes, size: H * W) { range in
            for p in range {
                let plane = xb + p * H * W
                for oy in 0..<oh { for ox in 0..<ow {
                    var best = -Float.infinity, at = oy * stride * W + ox * stride
                    for iy in (oy * stride)..<(oy * stride + kernel) {
                        for ix in (ox * stride)..<(ox * stride + kernel) {
                            let v = plane[iy * W + ix]
                            if v > best || v.isNaN { best = v; at = iy * W + ix }
                        }
                    }
                    let o = (p * oh + oy) * ow + ox
                    yb[o] = best
                    ab[o] = p * H * W + at
                } }
            }
        }
    } } }
    let output = Tensor(shape: [x.shape[0], x.shape[1], oh, ow], scalars: y)
    return Autograd.result(output, inputs: [x]) { dy in
        var dx = [Float](repeating: 0, count: x.value.count)
        dx.withUnsafeMutableBufferPointer { d in
            dy.scalars.withUnsafeBufferPointer { g in
                argmax.withUnsafeBufferPointer { a in
                    nonisolated(unsafe) let (db, gb, ab) = (d.baseAddress!, g.baseAddress!, a.baseAddress!)
                    // dX[argmax] += dY, by planes: each plane's outputs point into that plane only.
                    Parallel.forItems(planes, size: H * W) { range in
                        for o in (range.lowerBound * oh * ow)..<(range.upperBound * oh * ow) { db[ab[o]] += gb[o] }
                    }
                }
            }
        }
        return [Tensor(shape: x.shape, scalars: dx)]
    }
}
