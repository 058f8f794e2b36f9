import NN
import TensorCore

/// One sample for the transformer: a noisy latent at a flow time, with its text (and first frame for I2V).
public struct GokuSample {
    /// x_t, (C, T, H, W); an image has T = 1. T, H, W must be multiples of the patch extents.
    public var latent: Tensor
    /// Flow time t ∈ [0, 1] (0 noise, 1 data).
    public var timestep: Double
    /// Text encoder states, (Ltext, textDimension).
    public var text: Tensor
    /// (Ltext): `true` for real tokens, `false` for padding; nil keeps every token.
    public var textMask: [Bool]?
    /// Image-to-video: the clean latent of the first frame, (C, 1, H, W); nil conditions on zeros (no image, as for
    /// text-to-image samples and dropped conditions in an I2V model).
    public var firstFrame: Tensor?

    /// A sample; see the properties.
    public init(latent: Tensor, timestep: Double, text: Tensor, textMask: [Bool]? = nil, firstFrame: Tensor? = nil) {
        self.latent = latent
        self.timestep = timestep
        self.text = text
        self.textMask = textMask
        self.firstFrame = firstFrame
    }
}

/// Which sample each token of a pack belongs to.
public struct TokenLayout: Sendable {
    /// Offsets [0, L₀, L₀+L₁, …, L] of the samples' tokens.
    public let tokenOffsets: [Int]
    /// (L): the sample index of every token.
    public let tokenSample: [Int]
    /// Per sample, its patch grid (T', H', W').
    public let grids: [[Int]]

    /// N, the number of samples.
    public var sampleCount: Int { grids.count }
    /// L, the total number of tokens.
    public var tokenCount: Int { tokenOffsets.last ?? 0 }
}

/// Patch n' Pack (spec §3.5): samples of any kind and size in one sequence of tokens, with block-diagonal attention.
///
/// The pack is a batch of one sequence: tokens (1, ΣL, ·). Each sample keeps its own RoPE positions (t, h, w from 0),
/// its own timestep modulation (gathered per token), self-attention only within its tokens and cross-attention only to
/// its own text (query segments over the visual tokens, key segments over the concatenated texts, plus the texts'
/// padding). So a packed forward and backward equal the per-sample ones (tested).
public struct PackedBatch {
    /// Patch features of every sample, (1, L, embeddedChannels·pt·ph·pw); for I2V the condition's channels follow the
    /// noisy latent's. In a sequence shard, only the shard's tokens.
    public private(set) var patches: Tensor
    /// (N) flow times.
    public let timesteps: [Double]
    /// Concatenated text states, (1, ΣLtext, textDimension).
    public let text: Tensor
    /// Token ownership.
    public let layout: TokenLayout
    /// Offsets [0, …, ΣLtext] of each sample's text.
    public let textOffsets: [Int]
    /// Block-diagonal self-attention over the samples.
    public let selfAttentionMask: AttentionMask
    /// Each sample's tokens see only its own (unpadded) text (in a sequence shard, the shard's tokens).
    public private(set) var crossAttentionMask: AttentionMask
    /// RoPE tables (cos, sin), each (L, Dh), float32 (in a sequence shard, the shard's rows).
    public private(set) var rope: (cos: Tensor, sin: Tensor)
    /// The tokens this pack computes: all of them, or a sequence shard's (`sequenceShard`).
    public private(set) var tokenRange: Range<Int>
    /// The modulation row of each computed token (its sample), or nil for a single sample, whose rows broadcast.
    public private(set) var modulationRows: [Int]?
    /// Sequence parallelism's exchange for the self-attention, in a sequence shard.
    public private(set) var exchange: SequenceParallelExchange?
    /// The configuration the pack was cut for (patch size, channels).
    public let config: GokuConfig

    /// Packs `samples` for a model with `config`.
    /// - Throws: `PackedBatchError.invalidSample` naming the sample and field when shapes do not fit the config.
    public init(samples: [GokuSample], config: GokuConfig) throws {
        guard !samples.isEmpty else { throw PackedBatchError.empty }
        let p = config.patchSize, c = config.inChannels
        var patchList: [Tensor] = [], texts: [Tensor] = [], offsets = [0], textOffsets = [0]
        var tokenSample: [Int] = [], grids: [[Int]] = [], positions: [[Int]] = [], keep: [Bool] = []
        var anyPadding = false
        for (i, s) in samples.enumerated() {
            func fail(_ field: String, _ reason: String) -> PackedBatchError {
                .invalidSample(index: i, field: field, reason: reason)
            }
            let shape = s.latent.shape
            guard shape.count == 4, shape[0] == c else {
                throw fail("latent", "shape \(shape) is not (C=\(c), T, H, W)")
            }
            guard (1...3).allSatisfy({ shape[$0] > 0 && shape[$0] % p[$0 - 1] == 0 }) else {
                throw fail("latent", "extents (T, H, W) = \(Array(shape[1...])) are not multiples of the patch \(p)")
            }
            guard s.timestep.isFinite, (0...1).contains(s.timestep) else {
                throw fail("timestep", "\(s.timestep) is not in [0, 1]")
            }
            guard s.text.rank == 2, s.text.shape[1] == config.textDimension else {
                throw fail("text", "shape \(s.text.shape) is not (Ltext, \(config.textDimension))")
            }
            if let mask = s.textMask, mask.count != s.text.shape[0] {
                throw fail("textMask", "\(mask.count) entries for \(s.text.shape[0]) text tokens")
            }
            var input = s.latent
            if config.imageConditioning {
                let frame = s.firstFrame ?? Tensor.zeros([c, 1, shape[2], shape[3]], dtype: s.latent.dtype)
                guard frame.shape == [c, 1, shape[2], shape[3]] else {
                    throw fail("firstFrame", "shape \(frame.shape) is not (C, 1, H, W) = \([c, 1, shape[2], shape[3]])")
                }
                // The first frame broadcast along time, concatenated on channels: (2C, T, H, W).
                input = Tensor.concat([s.latent, frame.expand(shape)], axis: 0)
            } else if s.firstFrame != nil {
                throw fail("firstFrame", "given, but the model has no image conditioning")
            }
            let grid = Patchify.grid(frames: shape[1], height: shape[2], width: shape[3], patchSize: p)
            let tokens = Patchify.patchify(input, patchSize: p)  // (Lᵢ, Ce·p)
            patchList.append(tokens)
            grids.append(grid)
            positions += Patchify.ropePositions(grid: grid)
            offsets.append(offsets.last! + tokens.shape[0])
            tokenSample += [Int](repeating: i, count: tokens.shape[0])
            texts.append(s.text)
            textOffsets.append(textOffsets.last! + s.text.shape[0])
            keep += s.textMask ?? [Bool](repeating: true, count: s.text.shape[0])
            anyPadding = anyPadding || (s.textMask?.contains(false) ?? false)
        }
        patches = Tensor.concat(patchList, axis: 0).unsqueeze(0)  // (1, L, Ce·p)
        text = Tensor.concat(texts, axis: 0).unsqueeze(0)  // (1, ΣLtext, Dtext)
        timesteps = samples.map(\.timestep)
        layout = TokenLayout(tokenOffsets: offsets, tokenSample: tokenSample, grids: grids)
        self.textOffsets = textOffsets
        let single = samples.count == 1
        selfAttentionMask = single ? .none : AttentionMask(segments: offsets)
        crossAttentionMask = AttentionMask(
            keyPadding: anyPadding ? [keep] : nil, querySegments: single ? nil : offsets,
            keySegments: single ? nil : textOffsets)
        rope = Tensor.ropeTables(positions: positions, axisDims: config.ropeAxisDims, base: config.ropeBase)
        self.config = config
        tokenRange = 0..<layout.tokenCount
        modulationRows = single ? nil : tokenSample
    }

    /// The pack as one rank of a sequence-parallel group computes it (Ulysses): only the tokens of `range`, with their
    /// RoPE rows, modulation rows and cross-attention to their own text, and self-attention over the whole sequence
    /// through `exchange` (the block-diagonal mask stays the whole pack's). The model's output is then (1,
    /// range.count, ·), the rows `range` of the whole pack's output.
    public func sequenceShard(_ range: Range<Int>, exchange: SequenceParallelExchange) -> PackedBatch {
        precondition(tokenRange == 0..<layout.tokenCount && range.lowerBound >= 0 && range.upperBound <= layout.tokenCount,
            "sequenceShard: rows \(range) of a pack of \(layout.tokenCount) tokens")
        var shard = self
        shard.patches = patches.slice(axis: 1, range.lowerBound, range.upperBound)
        shard.rope = (rope.cos.slice(axis: 0, range.lowerBound, range.upperBound), rope.sin.slice(axis: 0, range.lowerBound, range.upperBound))
        if let segments = crossAttentionMask.querySegments {
            shard.crossAttentionMask.querySegments = segments.map { min(max($0 - range.lowerBound, 0), range.count) }
        }
        shard.tokenRange = range
        shard.modulationRows = modulationRows.map { Array($0[range]) }
        shard.exchange = exchange
        return shard
    }

    /// Splits the model's output back into per-sample latents.
    /// - Parameter output: (1, L, pt·ph·pw·outChannels).
    /// - Returns: per sample, (outChannels, T, H, W).
    public func unpack(_ output: Tensor) -> [Tensor] {
        precondition(
            output.rank == 3 && output.shape[0] == 1 && output.shape[1] == layout.tokenCount,
            "unpack: output \(output.shape) is not (1, \(layout.tokenCount), ·) (a sequence shard's output is not unpacked)")
        let tokens = output.squeeze(0)
        let channels = output.shape[2] / config.patchVolume
        return (0..<layout.sampleCount).map { i in
            let part = tokens.slice(axis: 0, layout.tokenOffsets[i], layout.tokenOffsets[i + 1])
            return Patchify.unpatchify(part, grid: layout.grids[i], channels: channels, patchSize: config.patchSize)
        }
    }
}

/// Samples that cannot be packed for a model.
public enum PackedBatchError: Error, Equatable, CustomStringConvertible {
    /// No samples.
    case empty
    /// Sample `index`'s `field` does not fit the configuration.
    case invalidSample(index: Int, field: String, reason: String)

    /// A one-line explanation naming the sample and field.
    public var description: String {
        switch self {
        case .empty: return "PackedBatch: no samples"
        case .invalidSample(let index, let field, let reason):
            return "PackedBatch: sample \(index), \(field): \(reason)"
        }
    }
}
