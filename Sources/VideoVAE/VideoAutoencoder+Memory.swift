import TensorCore

/// How `encode` and `decode` bound their memory: temporal chunks with a causal-convolution cache and overlapping
/// spatial tiles blended linearly, as diffusers' `AutoencoderKLCogVideoX` (`_encode`/`_decode`,
/// `tiled_encode`/`tiled_decode`).
///
/// Neither is exact: GroupNorm statistics are taken per chunk and per tile (and tiles see zero padding at their own
/// borders), so results differ from one pass by an amount that depends on the weights; with the causal cache the
/// convolutions themselves are exact across chunks. The CogVideoX VAE was trained with diffusers' chunking (8 video
/// frames / 2 latent frames per chunk), so for its weights chunked is the reference behaviour.
public struct VideoVAEMemoryOptions: Equatable, Sendable {
    /// Video frames per encoder chunk (diffusers: 8); the first chunk also takes the T mod chunk leftover frames
    /// (so 17 frames → 9 + 8). nil: the whole clip at once.
    public var sampleFramesPerChunk: Int?
    /// Latent frames per decoder chunk (diffusers: 2; 5 latent frames → 3 + 2). nil: the whole latent at once.
    public var latentFramesPerChunk: Int?
    /// Tile height in pixels, a multiple of 8; nil: no tiling. Tiling applies only when the input is larger.
    public var tileHeight: Int?
    /// Tile width in pixels, a multiple of 8; nil: no tiling.
    public var tileWidth: Int?
    /// Fraction of a tile shared with its neighbour below (diffusers: 1/6 at 480×720).
    public var tileOverlapHeight: Double
    /// Fraction of a tile shared with its neighbour to the right (diffusers: 1/5).
    public var tileOverlapWidth: Double

    /// Options; the defaults process everything in one pass.
    public init(
        sampleFramesPerChunk: Int? = nil, latentFramesPerChunk: Int? = nil, tileHeight: Int? = nil,
        tileWidth: Int? = nil, tileOverlapHeight: Double = 0.25, tileOverlapWidth: Double = 0.25
    ) {
        self.sampleFramesPerChunk = sampleFramesPerChunk
        self.latentFramesPerChunk = latentFramesPerChunk
        self.tileHeight = tileHeight
        self.tileWidth = tileWidth
        self.tileOverlapHeight = tileOverlapHeight
        self.tileOverlapWidth = tileOverlapWidth
    }

    /// One pass over the whole clip: exact, most memory.
    public static let wholeClip = VideoVAEMemoryOptions()

    /// diffusers' temporal chunking (8 frames / 2 latent frames), no tiling.
    public static let chunked = VideoVAEMemoryOptions(sampleFramesPerChunk: 8, latentFramesPerChunk: 2)

    /// diffusers' chunking plus tiles of `tile` pixels overlapping by a quarter (a quarter keeps the tile stride a
    /// multiple of 8 for any tile that is a multiple of 32; diffusers' 1/6 and 1/5 only do at 240×360).
    public static func tiled(tile: Int) -> VideoVAEMemoryOptions {
        VideoVAEMemoryOptions(sampleFramesPerChunk: 8, latentFramesPerChunk: 2, tileHeight: tile, tileWidth: tile)
    }
}

/// The tile geometry along one axis, in video pixels and latent cells (diffusers' names in comments).
struct TileAxis {
    let sampleTile: Int  // tile_sample_min_*
    let latentTile: Int  // tile_latent_min_*
    let overlap: Double  // tile_overlap_factor_*

    /// Encoder: tile start stride in pixels, blend extent and kept extent in latent cells.
    var encodeStride: Int { Int(Double(sampleTile) * (1 - overlap)) }
    var encodeBlend: Int { Int(Double(latentTile) * overlap) }
    var encodeKeep: Int { latentTile - encodeBlend }
    /// Decoder: tile start stride in latent cells, blend extent and kept extent in pixels.
    var decodeStride: Int { Int(Double(latentTile) * (1 - overlap)) }
    var decodeBlend: Int { Int(Double(sampleTile) * overlap) }
    var decodeKeep: Int { sampleTile - decodeBlend }
}

extension VideoAutoencoder {
    /// Encodes with bounded memory: tiles when `options` tile and the video is larger than a tile, temporal chunks
    /// with the causal cache when `options` chunk.
    /// - Parameter video: (B, C, T, H, W) in [−1, 1], T = 1 + 4k, H and W multiples of 8.
    /// - Throws: `VideoVAEError.invalidInput` for a bad shape or tile geometry.
    public func encode(_ video: Tensor, options: VideoVAEMemoryOptions) throws -> DiagonalGaussian {
        try validateVideo(video)
        try validateChunks(options)
        let (h, w) = (video.shape[3], video.shape[4])
        if let (rows, columns) = try tileAxes(options), h > rows.sampleTile || w > columns.sampleTile {
            return DiagonalGaussian(parameters: tiledEncode(video, rows: rows, columns: columns, options: options))
        }
        return DiagonalGaussian(parameters: chunkedEncode(video, framesPerChunk: options.sampleFramesPerChunk))
    }

    /// Decodes with bounded memory (see `encode(_:options:)`).
    /// - Parameter latent: (B, Cz, T, h, w), unscaled.
    /// - Throws: `VideoVAEError.invalidInput` for a bad shape or tile geometry.
    public func decode(_ latent: Tensor, options: VideoVAEMemoryOptions) throws -> Tensor {
        try validateLatent(latent)
        try validateChunks(options)
        let (h, w) = (latent.shape[3], latent.shape[4])
        if let (rows, columns) = try tileAxes(options), h > rows.latentTile || w > columns.latentTile {
            return tiledDecode(latent, rows: rows, columns: columns, options: options)
        }
        return chunkedDecode(latent, framesPerChunk: options.latentFramesPerChunk)
    }

    /// diffusers' frame batches: ⌊T / chunk⌋ chunks (at least one), the first taking the T mod chunk leftovers.
    public static func chunkRanges(frames: Int, chunk: Int) -> [Range<Int>] {
        let count = max(frames / chunk, 1), leftover = frames % chunk
        return (0..<count).map { i in
            (chunk * i + (i == 0 ? 0 : leftover))..<min(chunk * (i + 1) + leftover, frames)
        }
    }

    /// Encodes frame chunks in order, carrying the causal cache. Returns the posterior parameters.
    func chunkedEncode(_ video: Tensor, framesPerChunk: Int?) -> Tensor {
        guard let chunk = framesPerChunk else { return encodeParameters(video, cache: nil) }
        let cache = CausalConvCache()
        let parts = Self.chunkRanges(frames: video.shape[2], chunk: chunk).map {
            defer { cache.isClipStart = false }
            return encodeParameters(video.slice(axis: 2, $0.lowerBound, $0.upperBound), cache: cache)
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 2)
    }

    /// Decodes latent-frame chunks in order, carrying the causal cache.
    func chunkedDecode(_ latent: Tensor, framesPerChunk: Int?) -> Tensor {
        guard let chunk = framesPerChunk else { return decodeLatent(latent, cache: nil) }
        let cache = CausalConvCache()
        let parts = Self.chunkRanges(frames: latent.shape[2], chunk: chunk).map {
            defer { cache.isClipStart = false }
            return decodeLatent(latent.slice(axis: 2, $0.lowerBound, $0.upperBound), cache: cache)
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 2)
    }

    /// Chunks after the first must hold whole latent frames: video chunks a positive multiple of the temporal
    /// compression (so the first chunk, which takes the leftovers, is 1 + 4k frames), latent chunks positive.
    /// - Throws: `VideoVAEError.invalidInput` naming the option.
    func validateChunks(_ options: VideoVAEMemoryOptions) throws {
        let r = config.temporalCompression
        if let c = options.sampleFramesPerChunk, c <= 0 || c % r != 0 {
            throw VideoVAEError.invalidInput(
                what: "chunking", reason: "\(c) video frames per chunk is not a positive multiple of \(r)")
        }
        if let c = options.latentFramesPerChunk, c <= 0 {
            throw VideoVAEError.invalidInput(what: "chunking", reason: "\(c) latent frames per chunk is not positive")
        }
    }

    /// The tile geometry of `options`, nil without tiling.
    /// - Throws: `VideoVAEError.invalidInput` when a tile size, overlap or stride is not a whole number of latent cells.
    func tileAxes(_ options: VideoVAEMemoryOptions) throws -> (rows: TileAxis, columns: TileAxis)? {
        guard let th = options.tileHeight, let tw = options.tileWidth else { return nil }
        let f = config.spatialCompression
        func axis(_ tile: Int, _ overlap: Double, _ name: String) throws -> TileAxis {
            guard tile > 0, tile % f == 0 else {
                throw VideoVAEError.invalidInput(
                    what: "tiling", reason: "\(name) \(tile) is not a positive multiple of \(f)")
            }
            guard overlap >= 0, overlap < 1 else {
                throw VideoVAEError.invalidInput(what: "tiling", reason: "\(name) overlap \(overlap) is not in [0, 1)")
            }
            let a = TileAxis(sampleTile: tile, latentTile: tile / f, overlap: overlap)
            guard a.encodeStride > 0, a.encodeStride % f == 0, a.decodeStride > 0, a.encodeKeep * f == a.encodeStride,
                a.decodeKeep == a.decodeStride * f
            else {
                throw VideoVAEError.invalidInput(
                    what: "tiling",
                    reason: "\(name) \(tile) with overlap \(overlap) gives a tile stride of \(a.encodeStride) pixels, "
                        + "not a whole number of latent cells (try an overlap of 0.25 with a multiple of \(4 * f))")
            }
            return a
        }
        return (
            try axis(th, options.tileOverlapHeight, "tile height"), try axis(tw, options.tileOverlapWidth, "tile width")
        )
    }

    /// diffusers' `tiled_encode`: overlapping tiles, each encoded (chunked) on its own, blended and cropped.
    func tiledEncode(_ video: Tensor, rows: TileAxis, columns: TileAxis, options: VideoVAEMemoryOptions) -> Tensor {
        let (h, w) = (video.shape[3], video.shape[4])
        var tiles: [[Tensor]] = stride(from: 0, to: h, by: rows.encodeStride).map { i in
            stride(from: 0, to: w, by: columns.encodeStride).map { j in
                let tile = video.slice(axis: 3, i, min(i + rows.sampleTile, h)).slice(
                    axis: 4, j, min(j + columns.sampleTile, w))
                return chunkedEncode(tile, framesPerChunk: options.sampleFramesPerChunk)
            }
        }
        return Self.blendTiles(
            &tiles, blend: (rows.encodeBlend, columns.encodeBlend), keep: (rows.encodeKeep, columns.encodeKeep))
    }

    /// diffusers' `tiled_decode`: overlapping latent tiles, each decoded (chunked) on its own, blended and cropped.
    func tiledDecode(_ latent: Tensor, rows: TileAxis, columns: TileAxis, options: VideoVAEMemoryOptions) -> Tensor {
        let (h, w) = (latent.shape[3], latent.shape[4])
        var tiles: [[Tensor]] = stride(from: 0, to: h, by: rows.decodeStride).map { i in
            stride(from: 0, to: w, by: columns.decodeStride).map { j in
                let tile = latent.slice(axis: 3, i, min(i + rows.latentTile, h)).slice(
                    axis: 4, j, min(j + columns.latentTile, w))
                return chunkedDecode(tile, framesPerChunk: options.latentFramesPerChunk)
            }
        }
        return Self.blendTiles(
            &tiles, blend: (rows.decodeBlend, columns.decodeBlend), keep: (rows.decodeKeep, columns.decodeKeep))
    }

    /// Blends every tile with its upper and left neighbours (in place and in order, as diffusers: a tile's left
    /// neighbour has already been blended with the tile above it), crops each to `keep` and assembles the result.
    static func blendTiles(_ tiles: inout [[Tensor]], blend: (Int, Int), keep: (Int, Int)) -> Tensor {
        var rows: [Tensor] = []
        for i in tiles.indices {
            var row: [Tensor] = []
            for j in tiles[i].indices {
                if i > 0 { tiles[i][j] = blendEdge(tiles[i - 1][j], tiles[i][j], extent: blend.0, axis: 3) }
                if j > 0 { tiles[i][j] = blendEdge(tiles[i][j - 1], tiles[i][j], extent: blend.1, axis: 4) }
                let t = tiles[i][j]
                row.append(t.slice(axis: 3, 0, min(keep.0, t.shape[3])).slice(axis: 4, 0, min(keep.1, t.shape[4])))
            }
            rows.append(row.count == 1 ? row[0] : Tensor.concat(row, axis: 4))
        }
        return rows.count == 1 ? rows[0] : Tensor.concat(rows, axis: 3)
    }

    /// The first `extent` cells of `b` along `axis` replaced by a linear ramp from `a`'s last cells to `b`'s:
    /// b[y] ← a[end − e + y]·(1 − y/e) + b[y]·(y/e) (diffusers' `blend_v` / `blend_h`).
    public static func blendEdge(_ a: Tensor, _ b: Tensor, extent: Int, axis: Int) -> Tensor {
        let e = min(a.shape[axis], b.shape[axis], extent)
        guard e > 0 else { return b }
        var rampShape = [1, 1, 1, 1, 1]
        rampShape[axis] = e
        let ramp = Tensor(shape: rampShape, scalars: (0..<e).map { Float($0) / Float(e) }).to(b.dtype)
        let tail = a.slice(axis: axis, a.shape[axis] - e, a.shape[axis])
        let head = b.slice(axis: axis, 0, e)
        let blended = tail * (1 - ramp) + head * ramp
        return e == b.shape[axis]
            ? blended : Tensor.concat([blended, b.slice(axis: axis, e, b.shape[axis])], axis: axis)
    }
}
