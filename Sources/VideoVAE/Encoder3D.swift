import NN
import TensorCore

/// diffusers' `CogVideoXEncoder3D`: conv_in → down blocks (every level but the last halves H and W, the first
/// log2(temporal compression) levels also halve time) → mid block → GroupNorm → SiLU → conv_out to 2 × latent
/// channels (mean and log-variance).
public final class Encoder3D: Module {
    /// Causal 3×3×3 from image channels to the first level's channels.
    @ModuleInfo(key: "conv_in") public var convIn: CausalConv3d
    /// One block per level.
    @ModuleInfo(key: "down_blocks") public var downBlocks: [DownBlock3D]
    /// Two ResNet blocks at the lowest resolution.
    @ModuleInfo(key: "mid_block") public var midBlock: MidBlock3D
    /// GroupNorm with eps 1e-6 (fixed in diffusers).
    @ModuleInfo(key: "norm_out") public var normOut: GroupNorm
    /// Causal 3×3×3 to 2 × latent channels.
    @ModuleInfo(key: "conv_out") public var convOut: CausalConv3d

    /// Builds the encoder of `config` (assumed valid).
    public init(config c: VideoVAEConfig, generator: RandomGenerator) {
        let channels = c.blockOutChannels
        _convIn = ModuleInfo(
            wrappedValue: CausalConv3d(c.inChannels, channels[0], kernel: 3, generator: generator), key: "conv_in")
        _downBlocks = ModuleInfo(
            wrappedValue: channels.indices.map { i in
                DownBlock3D(
                    inputChannels: i == 0 ? channels[0] : channels[i - 1], outputChannels: channels[i],
                    layers: c.layersPerBlock, groups: c.normNumGroups, eps: c.normEps,
                    downsample: i < channels.count - 1, compressTime: i < c.temporalLevels, generator: generator)
            }, key: "down_blocks")
        _midBlock = ModuleInfo(
            wrappedValue: MidBlock3D(
                channels: channels.last!, groups: c.normNumGroups, eps: c.normEps, latentChannels: nil,
                generator: generator),
            key: "mid_block")
        _normOut = ModuleInfo(
            wrappedValue: GroupNorm(groups: c.normNumGroups, channels: channels.last!, eps: 1e-6), key: "norm_out")
        _convOut = ModuleInfo(
            wrappedValue: CausalConv3d(channels.last!, 2 * c.latentChannels, kernel: 3, generator: generator),
            key: "conv_out")
    }

    /// - Parameters:
    ///   - video: (B, Cin, T, H, W).
    ///   - cache: the temporal-chunk cache, nil for one pass.
    /// - Returns: the posterior's parameters (B, 2·Cz, T′, H/8, W/8), mean channels first.
    public func callAsFunction(_ video: Tensor, cache: CausalConvCache? = nil) -> Tensor {
        var h = convIn(video, cache: cache)
        for block in downBlocks { h = block(h, cache: cache) }
        h = midBlock(h, cache: cache)
        return convOut(normOut(h).silu(), cache: cache)
    }
}

/// diffusers' `CogVideoXDecoder3D`: conv_in → mid block → up blocks (one more ResNet per level than the encoder)
/// → SpatialNorm3D → SiLU → conv_out; every norm is conditioned on the input latent.
public final class Decoder3D: Module {
    /// Causal 3×3×3 from latent channels to the last level's channels.
    @ModuleInfo(key: "conv_in") public var convIn: CausalConv3d
    /// Two ResNet blocks at the lowest resolution.
    @ModuleInfo(key: "mid_block") public var midBlock: MidBlock3D
    /// One block per level, lowest resolution first.
    @ModuleInfo(key: "up_blocks") public var upBlocks: [UpBlock3D]
    /// The latent-conditioned output norm.
    @ModuleInfo(key: "norm_out") public var normOut: SpatialNorm3D
    /// Causal 3×3×3 to image channels.
    @ModuleInfo(key: "conv_out") public var convOut: CausalConv3d

    /// Builds the decoder of `config` (assumed valid).
    public init(config c: VideoVAEConfig, generator: RandomGenerator) {
        let channels = Array(c.blockOutChannels.reversed())
        let z = c.latentChannels
        _convIn = ModuleInfo(
            wrappedValue: CausalConv3d(z, channels[0], kernel: 3, generator: generator), key: "conv_in")
        _midBlock = ModuleInfo(
            wrappedValue: MidBlock3D(
                channels: channels[0], groups: c.normNumGroups, eps: c.normEps, latentChannels: z, generator: generator),
            key: "mid_block")
        _upBlocks = ModuleInfo(
            wrappedValue: channels.indices.map { i in
                UpBlock3D(
                    inputChannels: i == 0 ? channels[0] : channels[i - 1], outputChannels: channels[i],
                    layers: c.layersPerBlock + 1, groups: c.normNumGroups, eps: c.normEps, latentChannels: z,
                    upsample: i < channels.count - 1, compressTime: i < c.temporalLevels, generator: generator)
            }, key: "up_blocks")
        _normOut = ModuleInfo(
            wrappedValue: SpatialNorm3D(
                channels: channels.last!, latentChannels: z, groups: c.normNumGroups, generator: generator),
            key: "norm_out")
        _convOut = ModuleInfo(
            wrappedValue: CausalConv3d(channels.last!, c.outChannels, kernel: 3, generator: generator), key: "conv_out")
    }

    /// - Parameters:
    ///   - latent: (B, Cz, T, h, w).
    ///   - cache: the temporal-chunk cache, nil for one pass.
    /// - Returns: (B, Cout, 1 + 4(T − 1), 8h, 8w) for a whole clip (4T, 8h, 8w for a later chunk).
    public func callAsFunction(_ latent: Tensor, cache: CausalConvCache? = nil) -> Tensor {
        var h = convIn(latent, cache: cache)
        h = midBlock(h, latent: latent, cache: cache)
        for block in upBlocks { h = block(h, latent: latent, cache: cache) }
        h = normOut.normalize(h, latent: latent, cache: cache).silu()
        return convOut(h, cache: cache)
    }
}
