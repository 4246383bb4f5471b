import Foundation
import Testing
@testable import LSTMVision

/// Finite-difference checks of every differentiable operation.
@Suite struct AutodiffTests {
    @Test func matmulAndLinear() {
        let a = Variable(randomTensor([3, 4], seed: 1), requiresGrad: true)
        let b = Variable(randomTensor([4, 2], seed: 2), requiresGrad: true)
        let w = Variable(randomTensor([5, 4], seed: 3), requiresGrad: true)
        let bias = Variable(randomTensor([5], seed: 4), requiresGrad: true)
        let r1 = randomTensor([3, 2], seed: 5), r2 = randomTensor([3, 5], seed: 6)
        checkGradients([a, b]) { (matmul(a, b) * Variable(r1)).sum() }
        checkGradients([a, w, bias]) { (linear(a, weight: w, bias: bias) * Variable(r2)).sum() }
    }

    @Test func elementwiseActivations() {
        let x = Variable(randomTensor([4, 5], seed: 7, scale: 1.5), requiresGrad: true)
        let y = Variable(randomTensor([4, 5], seed: 8), requiresGrad: true)
        let r = Variable(randomTensor([4, 5], seed: 9))
        checkGradients([x]) { (tanh(x) * r).sum() }
        checkGradients([x]) { (sigmoid(x) * r).sum() }
        checkGradients([x], epsilon: 1e-3) { (relu(x) * r).sum() }
        checkGradients([x, y]) { ((x + y) * (x * y) * 0.5).sum() }
    }

    @Test func shapeOperations() {
        let x = Variable(randomTensor([2, 3, 4], seed: 10), requiresGrad: true)
        let y = Variable(randomTensor([2, 3, 2], seed: 11), requiresGrad: true)
        checkGradients([x]) { (swapLeadingAxes(x) * Variable(randomTensor([3, 2, 4], seed: 12))).sum() }
        checkGradients([x, y]) { (concatLast([x, y]) * Variable(randomTensor([2, 3, 6], seed: 13))).sum() }
        checkGradients([x]) { (select(x, -1) * Variable(randomTensor([3, 4], seed: 14))).sum() }
        checkGradients([x]) { (stack([x, x]) * Variable(randomTensor([2, 2, 3, 4], seed: 15))).sum() }
        checkGradients([x]) { (reshape(x, [6, 4]) * Variable(randomTensor([6, 4], seed: 16))).sum() }
    }

    @Test func losses() {
        let p = Variable(randomTensor([3, 4], seed: 17, scale: 2), requiresGrad: true)
        let t = randomTensor([3, 4], seed: 18)
        checkGradients([p]) { crossEntropy(p, labels: [0, 3, 1]) }
        checkGradients([p]) { crossEntropy(p, labels: [2, 2, 1], labelSmoothing: 0.2) }
        checkGradients([p]) { mseLoss(p, t) }
        checkGradients([p], epsilon: 1e-3) { l1Loss(p, t) }
        checkGradients([p], epsilon: 1e-3) { smoothL1Loss(p, t) }
    }

    @Test(arguments: [false, true])
    func lstmSequenceOperation(reverse: Bool) {
        let T = 4, N = 3, I = 5, H = 6
        let x = Variable(randomTensor([T, N, I], seed: 20), requiresGrad: true)
        let h0 = Variable(randomTensor([N, H], seed: 21), requiresGrad: true)
        let c0 = Variable(randomTensor([N, H], seed: 22), requiresGrad: true)
        let wih = Variable(randomTensor([4 * H, I], seed: 23, scale: 0.4), requiresGrad: true)
        let whh = Variable(randomTensor([4 * H, H], seed: 24, scale: 0.4), requiresGrad: true)
        let bih = Variable(randomTensor([4 * H], seed: 25, scale: 0.4), requiresGrad: true)
        let bhh = Variable(randomTensor([4 * H], seed: 26, scale: 0.4), requiresGrad: true)
        let ry = Variable(randomTensor([T, N, H], seed: 27)), rh = Variable(randomTensor([N, H], seed: 28))
        let rc = Variable(randomTensor([N, H], seed: 29))
        checkGradients([x, h0, c0, wih, whh, bih, bhh], samples: 20) {
            let r = lstmSequence(x, h0: h0, c0: c0, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh, reverse: reverse)
            return (r.output * ry).sum() + (r.h * rh).sum() + (r.c * rc).sum()
        }
    }

    @Test func gradientsAccumulateAcrossUses() {
        let x = Variable(Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        ((x * x) + x).sum().backward()
        #expect(x.grad?.scalars == [3, 5])
        let y = Autograd.withoutGradients { (x * x).sum() }
        #expect(!y.needsGrad)
    }
}
