/// A counter-based random generator (Philox4x32-10, Salmon et al. 2011).
///
/// Element `i` of a draw depends only on the seed and the generator's offset, never on how the work is split over
/// threads, so results are the same at any thread count. Each draw advances the offset past the counters it used;
/// `state` / `init(state:)` save and restore it exactly (for resumable training).
public final class RandomGenerator: @unchecked Sendable {
    /// The key.
    public let seed: UInt64
    /// Counter blocks consumed so far (each block yields four 32-bit words).
    public private(set) var offset: UInt64

    /// A generator at the start of the stream for `seed`.
    public init(seed: UInt64, offset: UInt64 = 0) {
        self.seed = seed
        self.offset = offset
    }

    /// `(seed, offset)`, enough to continue the stream exactly.
    public var state: (seed: UInt64, offset: UInt64) { (seed, offset) }

    /// Reserves `blocks` counter blocks and returns the first.
    public func reserve(blocks: UInt64) -> UInt64 {
        let start = offset
        offset &+= blocks
        return start
    }

    /// The four words of counter block `counter`.
    @inlinable
    public static func philox(seed: UInt64, counter: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: counter), c1 = UInt32(truncatingIfNeeded: counter >> 32)
        var c2: UInt32 = 0, c3: UInt32 = 0
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }

    /// A uniform float in [0, 1) from 24 random bits.
    @inlinable @inline(__always)
    public static func unit(_ w: UInt32) -> Float { Float(w >> 8) * (1.0 / 16_777_216.0) }

    /// Fills `out` with uniform [low, high) values; element i uses word i of the reserved stream.
    public func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, low: Float = 0, high: Float = 1) {
        let base = reserve(blocks: UInt64((count + 3) / 4))
        let seed = self.seed
        Parallel.forEach((count + 3) / 4, grain: 4096) { range in
            for block in range {
                let w = RandomGenerator.philox(seed: seed, counter: base &+ UInt64(block))
                let words = [w.0, w.1, w.2, w.3]
                for lane in 0..<4 where block * 4 + lane < count {
                    out[block * 4 + lane] = low + (high - low) * RandomGenerator.unit(words[lane])
                }
            }
        }
    }

    /// Fills `out` with standard normal values (Box–Muller on pairs of words).
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        let base = reserve(blocks: UInt64((count + 3) / 4))
        let seed = self.seed
        Parallel.forEach((count + 3) / 4, grain: 2048) { range in
            for block in range {
                let w = RandomGenerator.philox(seed: seed, counter: base &+ UInt64(block))
                let pairs = [(w.0, w.1), (w.2, w.3)]
                for (p, pair) in pairs.enumerated() {
                    // u1 in (0, 1] so the log is finite.
                    let u1 = 1 - RandomGenerator.unit(pair.0)
                    let u2 = RandomGenerator.unit(pair.1)
                    let r = (-2 * Float.log(u1)).squareRoot()
                    let theta = 2 * Float.pi * u2
                    let i = block * 4 + p * 2
                    if i < count { out[i] = mean + std * r * Float.cos(theta) }
                    if i + 1 < count { out[i + 1] = mean + std * r * Float.sin(theta) }
                }
            }
        }
    }

    /// A uniform integer in 0..<bound, for shuffles and sampling decisions.
    public func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:): bound must be positive")
        let w = RandomGenerator.philox(seed: seed, counter: reserve(blocks: 1))
        let x = UInt64(w.0) << 32 | UInt64(w.1)
        return Int(x % UInt64(bound))
    }

    /// A uniform Float in [0, 1).
    public func nextUniform() -> Float {
        RandomGenerator.unit(RandomGenerator.philox(seed: seed, counter: reserve(blocks: 1)).0)
    }
}
