import NN
import TensorCore

/// diffusers' `CogVideoXDownBlock3D`: `layers` ResNet blocks, then an optional `Downsample3D`.
/// Keys: `resnets.<i>`, `downsamplers.0`.
public final class DownBlock3D: Module {
    /// The ResNet blocks.
    public let resnets: [ResnetBlock3D]
    /// Zero or one downsampler.
    public let downsamplers: [Downsample3D]

    /// - Parameters:
    ///   - downsample: false for the last level.
    ///   - compressTime: whether the downsampler halves time.
    public init(
        inputChannels: Int, outputChannels: Int, layers: Int, groups: Int, eps: Double, downsample: Bool,
        compressTime: Bool, generator: RandomGenerator
    ) {
        resnets = (0..<layers).map {
            ResnetBlock3D(
                inputChannels: $0 == 0 ? inputChannels : outputChannels, outputChannels: outputChannels, groups: groups,
                eps: eps, latentChannels: nil, generator: generator)
        }
        downsamplers =
            downsample ? [Downsample3D(channels: outputChannels, compressTime: compressTime, generator: generator)] : []
    }

    /// - Parameter x: (B, Cin, T, H, W). - Returns: (B, Cout, T′, H′, W′).
    public func callAsFunction(_ x: Tensor, cache: CausalConvCache? = nil) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h, cache: cache) }
        for downsampler in downsamplers { h = downsampler(h) }
        return h
    }
}

/// diffusers' `CogVideoXMidBlock3D`: two ResNet blocks at the lowest resolution (SpatialNorm3D in the decoder).
/// Keys: `resnets.<i>`.
public final class MidBlock3D: Module {
    /// The ResNet blocks.
    public let resnets: [ResnetBlock3D]

    /// - Parameter latentChannels: non-nil in the decoder.
    public init(channels: Int, groups: Int, eps: Double, latentChannels: Int?, generator: RandomGenerator) {
        resnets = (0..<2).map { _ in
            ResnetBlock3D(
                inputChannels: channels, outputChannels: channels, groups: groups, eps: eps,
                latentChannels: latentChannels, generator: generator)
        }
    }

    /// - Parameter x: (B, C, T, H, W). - Returns: (B, C, T, H, W).
    public func callAsFunction(_ x: Tensor, latent: Tensor? = nil, cache: CausalConvCache? = nil) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h, latent: latent, cache: cache) }
        return h
    }
}

/// diffusers' `CogVideoXUpBlock3D`: `layers` ResNet blocks with SpatialNorm3D, then an optional `Upsample3D`.
/// Keys: `resnets.<i>`, `upsamplers.0`.
public final class UpBlock3D: Module {
    /// The ResNet blocks.
    public let resnets: [ResnetBlock3D]
    /// Zero or one upsampler.
    public let upsamplers: [Upsample3D]

    /// - Parameters:
    ///   - upsample: false for the last level.
    ///   - compressTime: whether the upsampler doubles time.
    public init(
        inputChannels: Int, outputChannels: Int, layers: Int, groups: Int, eps: Double, latentChannels: Int,
        upsample: Bool, compressTime: Bool, generator: RandomGenerator
    ) {
        resnets = (0..<layers).map {
            ResnetBlock3D(
                inputChannels: $0 == 0 ? inputChannels : outputChannels, outputChannels: outputChannels, groups: groups,
                eps: eps, latentChannels: latentChannels, generator: generator)
        }
        upsamplers =
            upsample ? [Upsample3D(channels: outputChannels, compressTime: compressTime, generator: generator)] : []
    }

    /// - Parameters:
    ///   - x: (B, Cin, T, H, W).
    ///   - latent: the decoder's input latent.
    /// - Returns: (B, Cout, T′, H′, W′).
    public func callAsFunction(_ x: Tensor, latent: Tensor, cache: CausalConvCache? = nil) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h, latent: latent, cache: cache) }
        for upsampler in upsamplers { h = upsampler(h, clipStart: cache?.isClipStart ?? true) }
        return h
    }
}
