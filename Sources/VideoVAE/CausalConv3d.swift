import NN
import TensorCore

/// The frames a chunked encode or decode carries from one temporal chunk to the next (diffusers' `conv_cache`).
///
/// Each causal convolution stores the last kT − 1 frames of its (padded) input under its own identity, and the next
/// chunk prepends them instead of the first-frame padding, so every convolution of chunk k sees exactly the frames
/// it would see in one pass over the whole clip. One cache serves one clip (one tile) from its first chunk to its
/// last; start a new one for the next clip.
public final class CausalConvCache {
    private var frames: [ObjectIdentifier: Tensor] = [:]

    /// True while the first chunk of a clip runs: its first frame is the clip's image frame (padded with itself, kept
    /// single by the temporal upsamplers). The chunk loops clear it after the first chunk.
    public internal(set) var isClipStart = true

    /// An empty cache: the first chunk pads with its first frame.
    public init() {}

    subscript(_ owner: AnyObject) -> Tensor? {
        get { frames[ObjectIdentifier(owner)] }
        set { frames[ObjectIdentifier(owner)] = newValue }
    }

    /// The number of convolutions holding frames.
    public var count: Int { frames.count }
}

/// A plain 3-D convolution with PyTorch's key names (`weight`, `bias`): diffusers' `CogVideoXSafeConv3d`.
///
/// diffusers splits inputs above 2 GiB along time (with kT − 1 frames of overlap) to fit cuDNN; the result is
/// identical to one pass, and this engine's convolution already works through bounded column buffers, so no split.
public final class SafeConv3d: Module {
    /// (Cout, Cin, kT, kH, kW).
    public let weight: Tensor
    /// (Cout).
    public let bias: Tensor
    /// Symmetric zero padding per axis (T, H, W).
    let padding: [Int]

    /// A convolution with PyTorch's default initialisation.
    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernel: Int, padding: [Int] = [0, 0, 0], generator: RandomGenerator
    ) {
        let shape = [outputChannels, inputChannels, kernel, kernel, kernel]
        weight = Initializer.torchDefault(shape, generator: generator).asParameter()
        bias = Initializer.torchDefaultBias(
            outputChannels, fanIn: inputChannels * kernel * kernel * kernel, generator: generator
        )
        .asParameter()
        self.padding = padding
    }

    /// - Parameter x: (B, Cin, T, H, W). - Returns: (B, Cout, T′, H′, W′).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv3d(x, weight: weight, bias: bias, padding: padding)
    }
}

/// diffusers' `CogVideoXCausalConv3d` with `pad_mode="first"` (the only mode CogVideoX uses): a k×k×k convolution,
/// stride 1, that sees only the present and past along time.
///
/// Time is padded on the past side only, with kT − 1 copies of the first frame (not zeros: an image, a one-frame
/// clip, then sees itself kT times, which is what lets one VAE serve images and videos), or with the cached last
/// frames of the previous chunk. Height and width get (k − 1)/2 zeros on each side. Key: `conv.weight`,
/// `conv.bias`.
public final class CausalConv3d: Module {
    /// The convolution (`conv`).
    public let conv: SafeConv3d
    let timeKernel: Int

    /// A causal convolution with kernel `kernel` along each of T, H, W.
    public init(_ inputChannels: Int, _ outputChannels: Int, kernel: Int, generator: RandomGenerator) {
        let spatialPad = (kernel - 1) / 2
        conv = SafeConv3d(
            inputChannels, outputChannels, kernel: kernel, padding: [0, spatialPad, spatialPad], generator: generator)
        timeKernel = kernel
    }

    /// - Parameters:
    ///   - x: (B, Cin, T, H, W).
    ///   - cache: the previous chunk's frames, updated with this chunk's; nil for one pass over a whole clip.
    /// - Returns: (B, Cout, T, H, W).
    public func callAsFunction(_ x: Tensor, cache: CausalConvCache? = nil) -> Tensor {
        guard timeKernel > 1 else { return conv(x) }
        let past =
            cache?[self]
            ?? x.slice(axis: 2, 0, 1).expand(
                [x.shape[0], x.shape[1], timeKernel - 1, x.shape[3], x.shape[4]])
        let padded = Tensor.concat([past, x], axis: 2)  // (B, Cin, kT − 1 + T, H, W)
        if let cache { cache[self] = padded.slice(axis: 2, padded.shape[2] - (timeKernel - 1), padded.shape[2]) }
        return conv(padded)
    }
}
