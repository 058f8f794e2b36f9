/// The dataset's own small random generator: SplitMix64 with explicit, version-stable draws.
///
/// Each sample gets a fresh generator from (seed, index), so sample i is the same whichever order or thread asks for
/// it. The draws are written out here rather than taken from the standard library's `random(in:using:)`, whose
/// algorithm is an implementation detail that may change between Swift releases (the data must not).
public struct ShapesRandom: Sendable {
    private var state: UInt64

    /// A generator for stream `stream` (a sample index) of `seed`.
    public init(seed: UInt64, stream: UInt64 = 0) {
        state = ShapesRandom.mix(seed &+ 0x9E37_79B9_7F4A_7C15) ^ ShapesRandom.mix(stream &* 0xD1B5_4A32_D192_ED03 &+ 1)
    }

    /// The SplitMix64 finaliser: a bijective scramble of 64 bits.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return ShapesRandom.mix(state)
    }

    /// A uniform double in [0, 1) (53 random bits).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform double in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// A uniform integer in 0..<bound (bound > 0), by rejection so every value is equally likely.
    public mutating func integer(below bound: Int) -> Int {
        precondition(bound > 0, "ShapesRandom.integer(below:): bound \(bound)")
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let r = next()
            if r < limit { return Int(r % b) }
        }
    }

    /// A uniformly chosen element.
    public mutating func pick<C: RandomAccessCollection>(_ items: C) -> C.Element where C.Index == Int {
        items[items.startIndex + integer(below: items.count)]
    }
}
