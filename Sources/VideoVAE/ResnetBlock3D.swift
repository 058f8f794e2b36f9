import NN
import TensorCore

/// The normalisation in front of each convolution of a ResNet block: a plain GroupNorm in the encoder, a
/// latent-conditioned `SpatialNorm3D` in the decoder.
public protocol ResnetNorm: Module {
    /// - Parameters:
    ///   - x: features, (B, C, T, H, W).
    ///   - latent: the decoder's input latent (B, Cz, Tz, Hz, Wz), or nil in the encoder.
    ///   - cache: the temporal-chunk cache.
    func normalize(_ x: Tensor, latent: Tensor?, cache: CausalConvCache?) -> Tensor
}

extension GroupNorm: ResnetNorm {
    /// GroupNorm over (C/groups, T, H, W): the latent and the cache are not used.
    public func normalize(_ x: Tensor, latent: Tensor?, cache: CausalConvCache?) -> Tensor { self(x) }
}

/// diffusers' `CogVideoXSpatialNorm3D` (from MoVQ, arXiv 2209.09002): GroupNorm whose scale and shift are 1×1×1
/// convolutions of the latent, resized (nearest) to the features' frames, height and width.
///
/// With an odd frame count above one, the first frame is resized on its own and the rest separately, so the image
/// frame at the front of a clip is conditioned on the first latent frame alone (the causal 1 + 4k layout). Keys:
/// `norm_layer`, `conv_y`, `conv_b`.
public final class SpatialNorm3D: Module, ResnetNorm {
    /// GroupNorm with eps 1e-6 (fixed in diffusers, whatever `norm_eps` says).
    @ModuleInfo(key: "norm_layer") public var normLayer: GroupNorm
    /// Scale from the latent.
    @ModuleInfo(key: "conv_y") public var convY: CausalConv3d
    /// Shift from the latent.
    @ModuleInfo(key: "conv_b") public var convB: CausalConv3d

    /// - Parameters:
    ///   - channels: feature channels (`f_channels`).
    ///   - latentChannels: latent channels (`zq_channels`).
    public init(channels: Int, latentChannels: Int, groups: Int, generator: RandomGenerator) {
        _normLayer = ModuleInfo(
            wrappedValue: GroupNorm(groups: groups, channels: channels, eps: 1e-6), key: "norm_layer")
        _convY = ModuleInfo(
            wrappedValue: CausalConv3d(latentChannels, channels, kernel: 1, generator: generator), key: "conv_y")
        _convB = ModuleInfo(
            wrappedValue: CausalConv3d(latentChannels, channels, kernel: 1, generator: generator), key: "conv_b")
    }

    /// - Parameters:
    ///   - x: features (B, C, T, H, W).
    ///   - latent: (B, Cz, Tz, Hz, Wz); required.
    /// - Returns: (B, C, T, H, W).
    ///
    /// The 1×1×1 convolutions are pointwise, so they commute with the nearest resize: they run on the latent at its
    /// own resolution and their outputs are resized (diffusers resizes first; the result is the same, and the
    /// convolutions then cost 1/64 to 1/256 as much at the decoder's finer levels).
    public func normalize(_ x: Tensor, latent: Tensor?, cache: CausalConvCache?) -> Tensor {
        guard let latent else { preconditionFailure("SpatialNorm3D: the decoder's latent is required") }
        let size = [x.shape[2], x.shape[3], x.shape[4]]
        let scale = resizeLatent(convY(latent, cache: cache), to: size)
        let shift = resizeLatent(convB(latent, cache: cache), to: size)
        return normLayer(x) * scale + shift
    }

    /// Nearest resize of latent-resolution maps (B, C, Tz, Hz, Wz) to `size` = [T, H, W]; with an odd frame count
    /// above one, the first frame is resized on its own and the rest separately (the causal 1 + 4k layout).
    func resizeLatent(_ z: Tensor, to size: [Int]) -> Tensor {
        let (t, h, w) = (size[0], size[1], size[2])
        guard t > 1 && t % 2 == 1 else { return resizeNearest(z, to: size) }
        let first = resizeNearest(z.slice(axis: 2, 0, 1), to: [1, h, w])
        let rest = resizeNearest(z.slice(axis: 2, 1, z.shape[2]), to: [t - 1, h, w])
        return Tensor.concat([first, rest], axis: 2)
    }
}

/// Nearest-neighbour resize of (B, C, T, H, W) to `size` = [T′, H′, W′], as `F.interpolate(mode="nearest")`:
/// output index i reads input floor(i · in / out). Integer up-scales use the upsampling kernel; other ratios gather.
func resizeNearest(_ x: Tensor, to size: [Int]) -> Tensor {
    let input = Array(x.shape.suffix(3))
    if input == size { return x }
    if zip(size, input).allSatisfy({ $0 % $1 == 0 }) {
        return x.upsampleNearest(scale: zip(size, input).map { $0 / $1 })
    }
    var out = x
    for axis in 0..<3 where input[axis] != size[axis] {
        let indices = (0..<size[axis]).map { min($0 * input[axis] / size[axis], input[axis] - 1) }
        out = out.indexSelect(axis: axis + 2, indices: indices)
    }
    return out
}

/// diffusers' `CogVideoXResnetBlock3D` without a time embedding (the VAE passes none):
/// norm1 → SiLU → conv1 → norm2 → SiLU → conv2, plus the input (through a 1×1×1 `conv_shortcut` when the channel
/// count changes). Dropout is 0 in every CogVideoX VAE and is left out.
public final class ResnetBlock3D: Module {
    /// GroupNorm (encoder) or SpatialNorm3D (decoder).
    public let norm1: any ResnetNorm
    /// First causal 3×3×3 convolution.
    public let conv1: CausalConv3d
    /// GroupNorm (encoder) or SpatialNorm3D (decoder).
    public let norm2: any ResnetNorm
    /// Second causal 3×3×3 convolution.
    public let conv2: CausalConv3d
    /// 1×1×1 projection of the input when the channel count changes.
    @ModuleInfo(key: "conv_shortcut") public var convShortcut: SafeConv3d?

    /// - Parameter latentChannels: non-nil in the decoder: the norms are SpatialNorm3D conditioned on the latent.
    public init(
        inputChannels: Int, outputChannels: Int, groups: Int, eps: Double, latentChannels: Int?,
        generator: RandomGenerator
    ) {
        func norm(_ channels: Int) -> any ResnetNorm {
            if let latentChannels {
                return SpatialNorm3D(
                    channels: channels, latentChannels: latentChannels, groups: groups, generator: generator)
            }
            return GroupNorm(groups: groups, channels: channels, eps: eps)
        }
        norm1 = norm(inputChannels)
        conv1 = CausalConv3d(inputChannels, outputChannels, kernel: 3, generator: generator)
        norm2 = norm(outputChannels)
        conv2 = CausalConv3d(outputChannels, outputChannels, kernel: 3, generator: generator)
        _convShortcut = ModuleInfo(
            wrappedValue: inputChannels == outputChannels
                ? nil : SafeConv3d(inputChannels, outputChannels, kernel: 1, generator: generator),
            key: "conv_shortcut")
    }

    /// - Parameters:
    ///   - x: (B, Cin, T, H, W).
    ///   - latent: the decoder's latent, nil in the encoder.
    /// - Returns: (B, Cout, T, H, W).
    public func callAsFunction(_ x: Tensor, latent: Tensor? = nil, cache: CausalConvCache? = nil) -> Tensor {
        var h = norm1.normalize(x, latent: latent, cache: cache).silu()
        h = conv1(h, cache: cache)
        h = norm2.normalize(h, latent: latent, cache: cache).silu()
        h = conv2(h, cache: cache)
        return h + (convShortcut.map { $0(x) } ?? x)
    }
}
