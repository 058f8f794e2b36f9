import Foundation
import VideoIO

/// The perceptual hash of imagehash's `phash` (the library the paper cites): grey, resize to 32×32, 2-D DCT-II, the
/// 8×8 lowest frequencies, one bit per coefficient above their median. Bits are packed row-major, first bit highest.
public enum PerceptualHash {
    /// The 64-bit pHash of a frame.
    public static func hash(_ frame: RGBFrame) -> UInt64 {
        hash(GreyImage(frame))
    }

    /// The 64-bit pHash of a grey image.
    public static func hash(_ image: GreyImage) -> UInt64 {
        let small = image.resized(width: 32, height: 32).values.map(Double.init)
        // DCT-II along rows then columns, keeping only the first 8 frequencies of each.
        var cosines = [Double](repeating: 0, count: 8 * 32)
        for k in 0..<8 {
            for n in 0..<32 { cosines[k * 32 + n] = cos(Double.pi * Double(k) * (2 * Double(n) + 1) / 64) }
        }
        var rows = [Double](repeating: 0, count: 32 * 8)  // (y, kx)
        for y in 0..<32 {
            for k in 0..<8 {
                var s = 0.0
                for x in 0..<32 { s += small[y * 32 + x] * cosines[k * 32 + x] }
                rows[y * 8 + k] = s
            }
        }
        var low = [Double](repeating: 0, count: 64)  // (ky, kx)
        for ky in 0..<8 {
            for kx in 0..<8 {
                var s = 0.0
                for y in 0..<32 { s += rows[y * 8 + kx] * cosines[ky * 32 + y] }
                low[ky * 8 + kx] = s
            }
        }
        let sorted = low.sorted()
        let median = (sorted[31] + sorted[32]) / 2
        var bits: UInt64 = 0
        for value in low { bits = (bits << 1) | (value > median ? 1 : 0) }
        return bits
    }

    /// Number of differing bits.
    public static func distance(_ a: UInt64, _ b: UInt64) -> Int { (a ^ b).nonzeroBitCount }

    /// Distance between two clips' keyframe hashes: for each keyframe, the nearest keyframe of the other clip; the
    /// median of those, symmetrised by the larger of the two directions. Clips sharing one frame by chance stay apart;
    /// a repeated segment scores near 0. Returns 64 when either clip has no keyframes.
    public static func clipDistance(_ a: [UInt64], _ b: [UInt64]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 64 }
        func directed(_ x: [UInt64], _ y: [UInt64]) -> Int {
            let nearest = x.map { h in y.map { distance(h, $0) }.min()! }.sorted()
            return nearest[nearest.count / 2]
        }
        return max(directed(a, b), directed(b, a))
    }
}
