import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// conv2d and maxPool2d: PyTorch fixtures (outputs to 1e-5, gradients to 1e-4), finite differences,
/// and the im2col convolution against the direct-loop reference.
@Suite struct ConvolutionTests {
    @Test(arguments: ["conv2d", "conv2d_stride"])
    func conv2dMatchesPyTorch(_ name: String) throws {
        print("\(name):")
        let (t, meta) = try fixture("\(name).safetensors")
        var g = SeededGenerator(seed: 0)
        let conv = Conv2D(Int(meta["in_channels"]!)!, Int(meta["out_channels"]!)!,
                          kernelSize: Int(meta["kernel_size"]!)!, stride: Int(meta["stride"]!)!,
                          padding: Int(meta["padding"]!)!, generator: &g)
        try conv.loadStateDict(["weight": t["param.weight"]!, "bias": t["param.bias"]!])
        let x = Variable(try #require(t["input"]), requiresGrad: true)
        let y = conv(x)
        expectClose(y.value, t["output"], 1e-5, "output")
        let loss = (y * Variable(t["loss_weight"]!)).sum()
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-4, "loss")
        loss.backward()
        expectClose(x.grad!, t["grad.input"], 1e-4, "grad input")
        expectClose(conv.weight.grad!, t["grad.param.weight"], 1e-4, "grad weight")
        expectClose(conv.bias!.grad!, t["grad.param.bias"], 1e-4, "grad bias")
    }

    @Test func maxPoolMatchesPyTorch() throws {
        print("maxpool:")
        let (t, _) = try fixture("maxpool.safetensors")
        let x = Variable(try #require(t["input"]), requiresGrad: true)
        let y = maxPool2d(x, kernel: 2, stride: 2)
        expectClose(y.value, t["output"], 1e-5, "output")
        (y * Variable(t["loss_weight"]!)).sum().backward()
        expectClose(x.grad!, t["grad.input"], 1e-4, "grad input")
        // The fixture's tied windows: the gradient goes to the first maximum only.
        #expect(x.grad![0, 0, 0, 1] == 0 && x.grad![0, 0, 1, 0] == 0 && x.grad![0, 0, 1, 1] == 0)
        #expect(x.grad![0, 1, 3, 2] == 0 && x.grad![0, 1, 2, 3] != 0)
    }

    /// (N, C, H, W, O, kh, kw, stride, padding): padded, strided, non-square, 1×1, kernel as large as the input.
    static let geometries: [[Int]] = [
        [2, 3, 7, 6, 4, 3, 3, 1, 1], [1, 2, 9, 11, 3, 3, 2, 2, 0], [2, 1, 5, 5, 2, 1, 1, 1, 0],
        [1, 3, 4, 5, 2, 4, 5, 1, 0], [3, 2, 8, 7, 5, 5, 3, 3, 2],
    ]

    @Test(arguments: geometries)
    func im2colMatchesDirectLoops(_ c: [Int]) {
        let x = randomTensor([c[0], c[1], c[2], c[3]], seed: 40)
        let w = randomTensor([c[4], c[1], c[5], c[6]], seed: 41), b = randomTensor([c[4]], seed: 42)
        let expected = conv2dReference(x, weight: w, bias: b, stride: c[7], padding: c[8])
        expectClose(conv2d(Variable(x), weight: Variable(w), bias: Variable(b), stride: c[7], padding: c[8]).value,
                    expected, 1e-5, "im2col vs direct \(c)")
        let noBias = conv2dReference(x, weight: w, bias: nil, stride: c[7], padding: c[8])
        expectClose(conv2d(Variable(x), weight: Variable(w), bias: nil, stride: c[7], padding: c[8]).value,
                    noBias, 1e-5, "without bias")
    }

    @Test(arguments: geometries)
    func col2imIsTheAdjointOfIm2col(_ c: [Int]) {
        // ⟨im2col(x), cols⟩ = ⟨x, col2im(cols)⟩ for every x and cols: the backward's folding adds each column entry
        // back to exactly the pixel the forward read it from (padding entries nowhere).
        let g = ConvGeometry(channels: c[1], height: c[2], width: c[3], kernelH: c[5], kernelW: c[6], stride: c[7],
                             padding: c[8])
        let x = randomTensor([g.channels * g.height * g.width], seed: 53).scalars
        let cols = randomTensor([g.patch * g.positions], seed: 54).scalars
        var unfolded = [Float](repeating: .nan, count: cols.count), folded = [Float](repeating: 0, count: x.count)
        im2col(x, g, &unfolded)
        col2im(cols, g, &folded)
        let left = zip(unfolded, cols).reduce(0.0) { $0 + Double($1.0 * $1.1) },
            right = zip(x, folded).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        #expect(abs(left - right) < 1e-4 * max(1, abs(left)), "\(c): ⟨im2col x, c⟩ = \(left), ⟨x, col2im c⟩ = \(right)")
        // Every entry is written (the NaN fill is gone): padding reads as 0.
        #expect(unfolded.allSatisfy { $0.isFinite })
    }

    @Test(arguments: geometries)
    func conv2dGradients(_ c: [Int]) {
        let x = Variable(randomTensor([c[0], c[1], c[2], c[3]], seed: 43), requiresGrad: true)
        let w = Variable(randomTensor([c[4], c[1], c[5], c[6]], seed: 44, scale: 0.5), requiresGrad: true)
        let b = Variable(randomTensor([c[4]], seed: 45), requiresGrad: true)
        let probe = conv2dReference(x.value, weight: w.value, bias: nil, stride: c[7], padding: c[8])
        let r = Variable(randomTensor(probe.shape, seed: 46))
        let worst = checkGradients([x, w, b], samples: 20) {
            (conv2d(x, weight: w, bias: b, stride: c[7], padding: c[8]) * r).sum()
        }
        print("  conv2d \(c): worst relative gradient error \(worst)")
    }

    @Test func conv2dGradientOfInputAlone() {
        // Only the input wants a gradient (as for an attack on a frozen model); the others stay nil.
        let x = Variable(randomTensor([1, 2, 5, 5], seed: 47), requiresGrad: true)
        let w = Variable(randomTensor([3, 2, 3, 3], seed: 48)), b = Variable(randomTensor([3], seed: 49))
        let r = Variable(randomTensor([1, 3, 5, 5], seed: 50))
        checkGradients([x]) { (conv2d(x, weight: w, bias: b, stride: 1, padding: 1) * r).sum() }
        #expect(w.grad == nil && b.grad == nil)
    }

    @Test(arguments: [[2, 2], [3, 2], [3, 1], [2, 3]])
    func maxPoolGradients(_ ks: [Int]) {
        // Distinct values spaced well beyond epsilon, so no perturbation changes which element is the maximum.
        var g = SeededGenerator(seed: 51)
        var values = (0..<(2 * 3 * 7 * 8)).map { Float($0) * 0.1 }
        values.shuffle(using: &g)
        let x = Variable(Tensor(shape: [2, 3, 7, 8], scalars: values), requiresGrad: true)
        let y = maxPool2d(x, kernel: ks[0], stride: ks[1])
        let r = Variable(randomTensor(y.shape, seed: 52))
        let worst = checkGradients([x], samples: 40) { (maxPool2d(x, kernel: ks[0], stride: ks[1]) * r).sum() }
        print("  maxPool2d kernel \(ks[0]) stride \(ks[1]): worst relative gradient error \(worst)")
    }

    @Test func maxPoolShapesAndTies() {
        // 5×5 with kernel 2, stride 2: the last row and column are dropped, as PyTorch's floor mode.
        let x = Variable(Tensor(repeating: 1, shape: [1, 1, 5, 5]), requiresGrad: true)
        let y = maxPool2d(x, kernel: 2, stride: 2)
        #expect(y.shape == [1, 1, 2, 2])
        y.sum().backward()
        let expected: [Float] = [1, 0, 1, 0, 0,
                                 0, 0, 0, 0, 0,
                                 1, 0, 1, 0, 0,
                                 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0]
        #expect(x.grad!.scalars == expected)
    }

    /// Planes shared among two threads (a batch above `Parallel.forItems`' threshold): the outputs and gradients of
    /// one thread, bit for bit, with overlapping windows (stride below the kernel) and a NaN.
    @Test func maxPoolOnTwoThreadsMatchesOne() {
        var values = randomTensor([4, 16, 20, 20], seed: 21)
        values.scalars[777] = .nan
        let r = randomTensor([4, 16, 9, 9], seed: 22)
        func run(_ threads: Int) -> (Tensor, Tensor) {
            Parallel.$threads.withValue(threads) {
                let x = Variable(values, requiresGrad: true)
                let y = maxPool2d(x, kernel: 3, stride: 2)
                (y * Variable(r)).sum().backward()
                return (y.value, x.grad!)
            }
        }
        let (y1, g1) = run(1), (y2, g2) = run(2)
        #expect(y1.scalars.map(\.bitPattern) == y2.scalars.map(\.bitPattern) && g1 == g2)
        #expect(y1.scalars.contains { $0.isNaN } && y1.shape == [4, 16, 9, 9])
    }

    /// The 2×2, stride-2 pooling sixteen windows at a time: the scalar path's outputs and indices bit for bit, on
    /// values drawn from five levels (ties in most windows), with NaNs and -inf, on widths that run both the vector
    /// blocks and the scalar tail (35 outputs a row: two blocks and three windows), and an odd height.
    @Test func maxPoolVectorPathMatchesScalar() {
        var g = SeededGenerator(seed: 23)
        let levels: [Float] = [-.infinity, -1, 0, 2, .nan]
        let x = Tensor(shape: [2, 3, 41, 71], scalars: (0..<(2 * 3 * 41 * 71)).map { _ in
            Int.random(in: 0..<20, using: &g) == 0 ? levels[4] : levels[Int.random(in: 0..<4, using: &g)]
        })
        let (yv, av, _) = maxPoolForward(x, kernel: 2, stride: 2, vectorized: true)
        let (ys, as_, _) = maxPoolForward(x, kernel: 2, stride: 2, vectorized: false)
        #expect(yv.shape == [2, 3, 20, 35] && ys.shape == yv.shape)
        #expect(yv.scalars.map(\.bitPattern) == ys.scalars.map(\.bitPattern) && av == as_)
        #expect(yv.scalars.contains { $0.isNaN } && yv.scalars.contains(-.infinity))
        // The tie rule itself: the first maximum of a window of equal values is its top-left pixel.
        let flat = Tensor(repeating: 2, shape: [1, 1, 2, 64])
        #expect(maxPoolForward(flat, kernel: 2, stride: 2, vectorized: true).1 == (0..<32).map { Int32(2 * $0) })
    }

    @Test func conv2DLayerInitialisation() {
        var g = SeededGenerator(seed: 3)
        let conv = Conv2D(4, 6, kernelSize: 3, stride: 2, padding: 1, generator: &g)
        #expect(conv.namedParameters.map(\.name) == ["weight", "bias"])
        #expect(conv.weight.shape == [6, 4, 3, 3] && conv.bias!.shape == [6])
        let bound = 1 / Float(36).squareRoot()
        #expect(conv.weight.value.scalars.allSatisfy { abs($0) <= bound })
        #expect(conv.bias!.value.scalars.allSatisfy { abs($0) <= bound })
        #expect(conv.weight.value.scalars.map(abs).max()! > 0.8 * bound)
        #expect(conv(Variable(Tensor(zeros: [2, 4, 9, 8]))).shape == [2, 6, 5, 4])
        #expect(Conv2D(4, 6, kernelSize: 3, bias: false, generator: &g).namedParameters.map(\.name) == ["weight"])
    }
}
