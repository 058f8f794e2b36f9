import NN
import TensorCore
import TestSupport
import XCTest

final class ConvolutionModuleTests: XCTestCase {
    /// A causal convolution's frame t must not change when frames after t change.
    func testCausalConvolutionIgnoresTheFuture() {
        let conv = Conv3d(2, 3, kernel: [3, 3, 3], padding: [1, 1, 1], causal: true, generator: RandomGenerator(seed: 1))
        let g = RandomGenerator(seed: 2)
        let x = Tensor.randn([1, 2, 5, 4, 4], generator: g)
        let changed = Tensor.concat([x.slice(axis: 2, 0, 3), Tensor.randn([1, 2, 2, 4, 4], generator: g)], axis: 2)
        let a = conv(x), b = conv(changed)
        XCTAssertEqual(a.shape, [1, 3, 5, 4, 4])
        expectClose(a.slice(axis: 2, 0, 3), b.slice(axis: 2, 0, 3), rtol: 0, atol: 0, "frames 0–2")
        XCTAssertGreaterThan(Autograd.inference { (a.slice(axis: 2, 3, 5) - b.slice(axis: 2, 3, 5)).abs().max().item() }, 1e-3)
    }

    func testSingleFrameIsAnImage() {
        // A one-frame clip through a causal 3×3×3 conv equals a 2-D conv with the last temporal tap of the kernel.
        let conv = Conv3d(2, 3, kernel: [3, 3, 3], padding: [1, 1, 1], causal: true, generator: RandomGenerator(seed: 3))
        let x = Tensor.randn([1, 2, 1, 5, 5], generator: RandomGenerator(seed: 4))
        let video = conv(x).squeeze(2)
        let lastTap = conv.weight.slice(axis: 2, 2, 3).squeeze(2)
        let image = Tensor.conv2d(x.squeeze(2), weight: lastTap, bias: conv.bias, padding: [1, 1])
        expectClose(video, image, rtol: 1e-5, atol: 1e-5, "one-frame video vs image")
        XCTAssertEqual(conv.namedParameters().map(\.key), ["weight", "bias"])
    }
}
