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
/// The images of a batch are shared among the threads, each unfolding and multiplying its own (one-thread
/// products); a single image runs its product on all of them.
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0) -> Variable {
    let g = convGeometry(x.value, weight.value, bias?.value, stride: stride, padding: padding)
    let N = x.shape[0], O = weight.shape[0], K = g.patch, L = g.positions
    let imageSize = g.channels * g.height * g.width
    let parts = imageParts(N, work: O * K * L), productThreads = parts == 1 ? Parallel.threads : 1
    var y = uninitializedFloats(N * O * L)   // every image's block written below
    x.value.scalars.withUnsafeBufferPointer { xp in
    weight.value.scalars.withUnsafeBufferPointer { wp in
    y.withUnsafeMutableBufferPointer { yp in
        nonisolated(unsafe) let (xb, wb, yb) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
        let biasValues = bias?.value.scalars
        Parallel.forParts(N, parts: parts) { images in
            // cols [K, L]: one image unfolded at a time (the backward unfolds again rather than keep N of them).
            var cols = uninitializedFloats(K * L)
            cols.withUnsafeMutableBufferPointer { cp in
                for n in images {
                    let c = cp.baseAddress!, yn = yb + n * O * L
                    im2col(xb + n * imageSize, g, c)
                    if let biasValues {   // Y_n starts as the bias broadcast over positions, then += W · cols_n.
                        for o in 0..<O { (yn + o * L).update(repeating: biasValues[o], count: L) }
                    }
                    // Y_n [O, L] = W [O, K] · cols_n [K, L]
                    BLAS.gemm(transA: false, transB: false, m: O, n: L, k: K, a: wb, lda: K, b: c, ldb: L,
                              beta: biasValues == nil ? 0 : 1, c: yn, ldc: L, threads: productThreads)
                }
            }
        }
    } } }
    let output = Tensor(shape: [N, O, g.outH, g.outW], scalars: y)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Autograd.result(output, inputs: inputs) { dy in
        // dW sums over the images in `convWeightGroups` fixed groups of consecutive images (each group's sum in
        // image order, then the groups' in group order), so that it does not depend on how many threads share them.
        let groupCount = min(N, convWeightGroups)
        var dx = uninitializedFloats(x.needsGrad ? N * imageSize : 0)                // each image's block zeroed below
        var partials = uninitializedFloats(weight.needsGrad ? groupCount * O * K : 0)   // set by a group's first image
        let groupParts = imageParts(groupCount, work: N * O * K * L / groupCount)
        let threads = groupParts == 1 ? Parallel.threads : 1
        dy.scalars.withUnsafeBufferPointer { dyp in
        x.value.scalars.withUnsafeBufferPointer { xp in
        weight.value.scalars.withUnsafeBufferPointer { wp in
        partials.withUnsafeMutableBufferPointer { pp in
        dx.withUnsafeMutableBufferPointer { dxp in
            nonisolated(unsafe) let (dyb, xb, wb, pb, dxb) =
                (dyp.baseAddress!, xp.baseAddress!, wp.baseAddress!, pp.baseAddress, dxp.baseAddress)
            Parallel.forParts(groupCount, parts: groupParts) { groupRange in
                var cols = uninitializedFloats(weight.needsGrad ? K * L : 0)
                var dcols = uninitializedFloats(x.needsGrad ? K * L : 0)
                cols.withUnsafeMutableBufferPointer { cp in
                dcols.withUnsafeMutableBufferPointer { dcp in
                    for group in groupRange {
                        let images = (group * N / groupCount)..<((group + 1) * N / groupCount)
                        for n in images {
                            let dyn = dyb + n * O * L
                            if weight.needsGrad {   // dW_group [O, K] += dY_n [O, L] · cols_nᵀ [L, K]
                                im2col(xb + n * imageSize, g, cp.baseAddress!)
                                BLAS.gemm(transA: false, transB: true, m: O, n: K, k: L, a: dyn, lda: L,
                                          b: cp.baseAddress!, ldb: L, beta: n == images.lowerBound ? 0 : 1,
                                          c: pb! + group * O * K, ldc: K, threads: threads)
                            }
                            if x.needsGrad {
                                // dcols_n [K, L] = Wᵀ [K, O] · dY_n [O, L], folded back into dX_n.
                                BLAS.gemm(transA: true, transB: false, m: K, n: L, k: O, a: wb, lda: K,
                                          b: dyn, ldb: L, beta: 0, c: dcp.baseAddress!, ldc: L, threads: threads)
                                let dxn = dxb! + n * imageSize
                                dxn.update(repeating: 0, count: imageSize)
                                col2im(dcp.baseAddress!, g, dxn)
                            }
                        }
                    }
                } }
            }
        } } } } }
        var dw: Tensor?
        if weight.needsGrad {
            var sum = Array(partials[0..<(O * K)])
            for group in 1..<groupCount {
                let base = group * O * K
                for i in 0..<(O * K) { sum[i] += partials[base + i] }
            }
            dw = Tensor(shape: weight.shape, scalars: sum)
        }
        var grads: [Tensor?] = [x.needsGrad ? Tensor(shape: x.shape, scalars: dx) : nil, dw]
        if let bias {   // db[o] = Σ_n Σ_positions dY[n, o, ·]
            grads.append(bias.needsGrad ? Tensor(shape: [O], scalars: channelSums(dy, images: N, channels: O))
                                        : nil)
        }
        return grads
    }
}

/// The fixed number of groups of images whose weight gradients conv2d's backward sums apart (their partial sums
/// are what the threads share).
let convWeightGroups = 4

/// How many threads share the images of a batch: one per thread (at most one per image) once the products come to
/// `BLAS.parallelWork` multiply-adds in all.
private func imageParts(_ images: Int, work perImage: Int) -> Int {
    images > 1 && images * perImage >= BLAS.parallelWork ? min(Parallel.threads, images) : 1
}

/// Σ over images and positions of x [N, C, L] per channel: [C], each row summed 16 lanes at a time, the
/// images added in order.
private func channelSums(_ x: Tensor, images: Int, channels: Int) -> [Float] {
    let L = x.count / max(images * channels, 1)
    var sums = [Float](repeating: 0, count: channels)
    x.scalars.withUnsafeBufferPointer { p in
        for n in 0..<images {
            for c in 0..<channels { sums[c] += VectorMath.sum(p.baseAddress! + (n * channels + c) * L, L) }
        }
    }
    return sums
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
    let (y, argmax, g) = maxPoolForward(x.value, kernel: kernel, stride: stride, vectorized: true)
    let planes = g.planes, planeSize = g.height * g.width, outputs = g.outH * g.outW
    return Autograd.result(y, inputs: [x]) { dy in
        var dx = [Float](repeating: 0, count: x.value.count)
        dx.withUnsafeMutableBufferPointer { d in
            dy.scalars.withUnsafeBufferPointer { g in
                argmax.withUnsafeBufferPointer { a in
                    nonisolated(unsafe) let (db, gb, ab) = (d.baseAddress!, g.baseAddress!, a.baseAddress!)
                    // dX[argmax] += dY, by planes: each plane's outputs point into that plane only.
                    Parallel.forItems(planes, size: planeSize) { range in
                        for p in range {
                            let plane = db + p * planeSize
                            for o in (p * outputs)..<((p + 1) * outputs) { plane[Int(ab[o])] += gb[o] }
                        }
                    }
                }
            }
        }
        return [Tensor(shape: x.shape, scalars: dx)]
    }
}

/// The sizes of a max pooling: planes (N·C) of height × width, windows kernel × kernel `stride` apart.
struct PoolGeometry {
    let planes: Int, height: Int, width: Int, kernel: Int, stride: Int
    var outH: Int { slidingOutputSize(height, kernel: kernel, stride: stride, padding: 0) }
    var outW: Int { slidingOutputSize(width, kernel: kernel, stride: stride, padding: 0) }
}

/// Max pooling's forward: the outputs, and for each the index within its plane of the input it was taken from.
/// `vectorized` runs 2×2 windows of stride 2 sixteen outputs at a time; false runs every window by `windowMax`
/// (the reference the tests hold the vectorized path to).
func maxPoolForward(_ x: Tensor, kernel: Int, stride: Int, vectorized: Bool) -> (Tensor, [Int32], PoolGeometry) {
    precondition(x.rank == 4, "maxPool2d: input must be [batch, channels, height, width], got \(x.shape)")
    precondition(kernel > 0 && stride > 0, "maxPool2d: kernel and stride must be positive, got \(kernel), \(stride)")
    let g = PoolGeometry(planes: x.shape[0] * x.shape[1], height: x.shape[2], width: x.shape[3], kernel: kernel,
                         stride: stride)
    precondition(kernel <= g.height && kernel <= g.width,
                 "maxPool2d: kernel \(kernel) does not fit input \(g.height)×\(g.width)")
    precondition(g.height * g.width <= Int(Int32.max), "maxPool2d: planes of over 2³¹ pixels")
    let oh = g.outH, ow = g.outW, H = g.height, W = g.width
    let fast = vectorized && kernel == 2 && stride == 2
    var y = uninitializedFloats(g.planes * oh * ow)        // every output written below
    var argmax = [Int32](repeating: 0, count: y.count)
    x.scalars.withUnsafeBufferPointer { xp in
    y.withUnsafeMutableBufferPointer { yp in
    argmax.withUnsafeMutableBufferPointer { ap in
        nonisolated(unsafe) let (xb, yb, ab) = (xp.baseAddress!, yp.baseAddress!, ap.baseAddress!)
        // Planes are independent: shared among the threads (the rest of a step often leaves one core idle here).
        Parallel.forItems(g.planes, size: H * W) { range in
            for p in range {
                let plane = xb + p * H * W
                for oy in 0..<oh {
                    let out = p * oh * ow + oy * ow
                    var ox = 0
                    if fast {
                        while ox + 16 <= ow {
                            maxPool2x2(plane, row: 2 * oy, column: 2 * ox, width: W, yb + out + ox, ab + out + ox)
                            ox += 16
                        }
                    }
                    for ox in ox..<ow {
                        (yb[out + ox], ab[out + ox]) = windowMax(plane, oy: oy, ox: ox, g)
                    }
                }
            }
        }
    } } }
    return (Tensor(shape: [x.shape[0], x.shape[1], oh, ow], scalars: y), argmax, g)
}

/// The maximum of one window of `plane` and its index in the plane: the first maximum in row-major order, or the
/// last NaN.
@inline(__always)
private func windowMax(_ plane: UnsafePointer<Float>, oy: Int, ox: Int, _ g: PoolGeometry) -> (Float, Int32) {
    var best = -Float.infinity, at = oy * g.stride * g.width + ox * g.stride
    for iy in (oy * g.stride)..<(oy * g.stride + g.kernel) {
        for ix in (ox * g.stride)..<(ox * g.stride + g.kernel) {
            let v = plane[iy * g.width + ix]
            if v > best || v.isNaN { best = v; at = iy * g.width + ix }
        }
    }
    return (best, Int32(at))
}

/// Sixteen 2×2 windows of stride 2 side by side, from input row `row` and column `column` on: their maxima into y and
/// their indices in the plane into `at`, with `windowMax`'s choices (the first maximum, the last NaN).
@inline(__always)
private func maxPool2x2(_ plane: UnsafePointer<Float>, row: Int, column: Int, width: Int,
                        _ y: UnsafeMutablePointer<Float>, _ at: UnsafeMutablePointer<Int32>) {
    let top = UnsafeRawPointer(plane + row * width + column).loadUnaligned(as: SIMD32<Float>.self)
    let bottom = UnsafeRawPointer(plane + (row + 1) * width + column).loadUnaligned(as: SIMD32<Float>.self)
    // The windows' top-left pixels, then the other three in row-major order: each replaces the best when greater,
    // or when NaN.
    let corner = SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) &+ Int32(row * width + column)
    var best = top.evenHalf, index = corner
    @inline(__always) func take(_ v: SIMD16<Float>, _ offset: Int) {
        let wins = (v .> best) .| (v .!= v)
        best.replace(with: v, where: wins)
        index.replace(with: corner &+ Int32(offset), where: wins)
    }
    take(top.oddHalf, 1)
    take(bottom.evenHalf, width)
    take(bottom.oddHalf, width + 1)
    UnsafeMutableRawPointer(y).storeBytes(of: best, as: SIMD16<Float>.self)
    UnsafeMutableRawPointer(at).storeBytes(of: index, as: SIMD16<Int32>.self)
}
