import NN
import TensorCore

/// A 2-D convolution applied to every frame of (B, C, T, H, W), with the 4-D weight of PyTorch's `nn.Conv2d`
/// (Cout, Cin, kH, kW) so that diffusers' keys and shapes load unchanged. It runs as a 3-D convolution with a
/// temporal extent of one (the reshaped weight shares storage, and gradients reach it through the reshape).
public final class FrameConv2d: Module {
    /// (Cout, Cin, k, k).
    public let weight: Tensor
    /// (Cout).
    public let bias: Tensor

    /// A k×k convolution with PyTorch's default initialisation.
    public init(_ inputChannels: Int, _ outputChannels: Int, kernel: Int, generator: RandomGenerator) {
        weight = Initializer.torchDefault([outputChannels, inputChannels, kernel, kernel], generator: generator)
            .asParameter()
        bias = Initializer.torchDefaultBias(
            outputChannels, fanIn: inputChannels * kernel * kernel, generator: generator
        )
        .asParameter()
    }

    /// - Parameters:
    ///   - x: (B, Cin, T, H, W).
    ///   - stride: along H and W.
    ///   - padding: (before, after) zeros along H and W.
    /// - Returns: (B, Cout, T, H′, W′).
    func callAsFunction(_ x: Tensor, stride: Int, padding: [(Int, Int)]) -> Tensor {
        let w = weight.shape
        return Tensor.conv3d(
            x, weight: weight.reshape([w[0], w[1], 1, w[2], w[3]]), bias: bias, stride: [1, stride, stride],
            padding: [(0, 0)] + padding)
    }
}

/// diffusers' `CogVideoXDownsample3D`: optionally halves time, then halves height and width with a stride-2 3×3
/// convolution after one zero row and column on the bottom and right (padding (0, 1) as diffusers, not (1, 1)).
///
/// Time: an odd frame count keeps the first frame and averages the rest in pairs (1 + 2k → 1 + k: an image stays
/// one frame); an even count averages all frames in pairs (the later chunks of a chunked encode). Key: `conv`.
public final class Downsample3D: Module {
    /// The stride-2 convolution (`conv`, a `Conv2d` in diffusers).
    public let conv: FrameConv2d
    /// Whether this level halves time.
    public let compressTime: Bool

    /// A downsampler keeping the channel count.
    public init(channels: Int, compressTime: Bool, generator: RandomGenerator) {
        conv = FrameConv2d(channels, channels, kernel: 3, generator: generator)
        self.compressTime = compressTime
    }

    /// - Parameter x: (B, C, T, H, W). - Returns: (B, C, T′, H/2, W/2) with T′ = 1 + (T − 1)/2 for odd T, T/2 for
    ///   even T, T when time is not compressed.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var x = x
        if compressTime {
            let t = x.shape[2]
            if t % 2 == 1 {
                if t > 1 {
                    let rest = Tensor.avgPool3d(x.slice(axis: 2, 1, t), kernel: [2, 1, 1], stride: [2, 1, 1])
                    x = Tensor.concat([x.slice(axis: 2, 0, 1), rest], axis: 2)
                }
            } else {
                x = Tensor.avgPool3d(x, kernel: [2, 1, 1], stride: [2, 1, 1])
            }
        }
        return conv(x, stride: 2, padding: [(0, 1), (0, 1)])
    }
}

/// diffusers' `CogVideoXUpsample3D`: nearest-neighbour doubling of height and width (and of time when
/// `compressTime`), then a 3×3 convolution on every frame.
///
/// Time, at the start of a clip: every frame but the first is doubled (1 + k → 1 + 2k; an image stays one frame);
/// in a later chunk every frame is doubled. diffusers decides by parity instead (an odd count above one keeps its
/// first frame, an even count or a later chunk doubles all, a single frame stays single). The two agree wherever
/// diffusers' own decoding is consistent (odd latent counts whole; its 2-frame chunks after an odd first chunk);
/// the clip-start rule also gives 1 + 4k frames for an even latent count (diffusers gives 4(1 + k)), which a clip of
/// 1 + 4k frames with k odd (5, 13, …) encodes to. Key: `conv`.
public final class Upsample3D: Module {
    /// The 3×3 convolution (`conv`, a `Conv2d` in diffusers).
    public let conv: FrameConv2d
    /// Whether this level doubles time.
    public let compressTime: Bool

    /// An upsampler keeping the channel count.
    public init(channels: Int, compressTime: Bool, generator: RandomGenerator) {
        conv = FrameConv2d(channels, channels, kernel: 3, generator: generator)
        self.compressTime = compressTime
    }

    /// - Parameters:
    ///   - x: (B, C, T, H, W).
    ///   - clipStart: whether `x` starts the clip (its first frame is the image frame).
    /// - Returns: (B, C, T′, 2H, 2W) with T′ = 2T − 1 at the clip start, 2T in later chunks (T when time is kept).
    public func callAsFunction(_ x: Tensor, clipStart: Bool = true) -> Tensor {
        let t = x.shape[2]
        let up: Tensor
        if !compressTime || (clipStart && t == 1) {
            up = x.upsampleNearest(scale: [1, 2, 2])
        } else if clipStart {
            let first = x.slice(axis: 2, 0, 1).upsampleNearest(scale: [1, 2, 2])
            let rest = x.slice(axis: 2, 1, t).upsampleNearest(scale: [2, 2, 2])
            up = Tensor.concat([first, rest], axis: 2)
        } else {
            up = x.upsampleNearest(scale: [2, 2, 2])
        }
        return conv(up, stride: 1, padding: [(1, 1), (1, 1)])
    }
}
