import TensorCore

/// Cutting a latent into patch tokens and putting tokens back, for one sample.
///
/// Token order is t-major, then h, then w (the order of `ropePositions`). A token's features are ordered
/// (C, pt, ph, pw), the flattening of a Conv3d weight (Cout, C, pt, ph, pw), so a patch-embedding convolution's
/// weight loads into the linear layer by a reshape.
public enum Patchify {
    /// The patch grid (T', H', W') of a latent of extents (T, H, W).
    public static func grid(frames: Int, height: Int, width: Int, patchSize: [Int]) -> [Int] {
        [frames / patchSize[0], height / patchSize[1], width / patchSize[2]]
    }

    /// - Parameters:
    ///   - latent: (C, T, H, W), each of T, H, W divisible by the patch extent.
    ///   - patchSize: (pt, ph, pw).
    /// - Returns: tokens, (T'·H'·W', C·pt·ph·pw).
    public static func patchify(_ latent: Tensor, patchSize p: [Int]) -> Tensor {
        precondition(latent.rank == 4, "patchify: latent must be (C, T, H, W), got \(latent.shape)")
        let c = latent.shape[0]
        let g = grid(frames: latent.shape[1], height: latent.shape[2], width: latent.shape[3], patchSize: p)
        return latent.reshape([c, g[0], p[0], g[1], p[1], g[2], p[2]])  // (C, T', pt, H', ph, W', pw)
            .permute([1, 3, 5, 0, 2, 4, 6])  // (T', H', W', C, pt, ph, pw)
            .reshape([g[0] * g[1] * g[2], c * p[0] * p[1] * p[2]])
    }

    /// The inverse of `patchify`.
    /// - Parameters:
    ///   - tokens: (T'·H'·W', C·pt·ph·pw).
    ///   - grid: (T', H', W').
    ///   - channels: C.
    /// - Returns: (C, T'·pt, H'·ph, W'·pw).
    public static func unpatchify(_ tokens: Tensor, grid g: [Int], channels c: Int, patchSize p: [Int]) -> Tensor {
        precondition(
            tokens.shape == [g[0] * g[1] * g[2], c * p[0] * p[1] * p[2]],
            "unpatchify: tokens \(tokens.shape) do not match grid \(g), \(c) channels and patch \(p)")
        return tokens.reshape([g[0], g[1], g[2], c, p[0], p[1], p[2]])  // (T', H', W', C, pt, ph, pw)
            .permute([3, 0, 4, 1, 5, 2, 6])  // (C, T', pt, H', ph, W', pw)
            .reshape([c, g[0] * p[0], g[1] * p[1], g[2] * p[2]])
    }

    /// The RoPE positions (t, h, w) of a sample's tokens, in patch-grid units from 0, in token order.
    public static func ropePositions(grid g: [Int]) -> [[Int]] {
        var out: [[Int]] = []
        out.reserveCapacity(g[0] * g[1] * g[2])
        for t in 0..<g[0] { for h in 0..<g[1] { for w in 0..<g[2] { out.append([t, h, w]) } } }
        return out
    }
}
