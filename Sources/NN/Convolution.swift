import TensorCore

/// A 3-D convolution over (N, C, T, H, W) with PyTorch's weight layout (Cout, Cin, kT, kH, kW).
///
/// `causal` pads time on the past side only (kT − 1 frames before, none after), so output frame t sees input frames
/// ≤ t: the convolution of a causal video VAE, where an image is a one-frame video.
public final class Conv3d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: [Int]
    public let padding: [(Int, Int)]

    /// - Parameters:
    ///   - kernel: (kT, kH, kW).
    ///   - padding: symmetric spatial and temporal padding per axis (ignored for time when `causal`).
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernel: [Int], stride: [Int] = [1, 1, 1], padding: [Int] = [0, 0, 0],
        causal: Bool = false, bias: Bool = true, generator: RandomGenerator = DefaultGenerator.shared
    ) {
        precondition(kernel.count == 3 && stride.count == 3 && padding.count == 3, "Conv3d: kernel, stride and padding need 3 entries")
        let shape = [outputChannels, inputChannels] + kernel
        weight = Initializer.torchDefault(shape, generator: generator).asParameter()
        let fanIn = inputChannels * kernel.reduce(1, *)
        self.bias = bias ? Initializer.torchDefaultBias(outputChannels, fanIn: fanIn, generator: generator).asParameter() : nil
        self.stride = stride
        self.padding = [causal ? (kernel[0] - 1, 0) : (padding[0], padding[0]), (padding[1], padding[1]), (padding[2], padding[2])]
    }

    /// - Parameter x: (N, Cin, T, H, W). - Returns: (N, Cout, T′, H′, W′).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv3d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
