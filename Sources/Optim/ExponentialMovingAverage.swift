import TensorCore

/// An exponential moving average of weights: shadow ← decay·shadow + (1 − decay)·weight after each update.
///
/// Sampling uses the shadow weights (`copy(to:)`), as DiT-style models do; training continues on the raw ones.
public final class ExponentialMovingAverage {
    /// Weight of the past (typical 0.9999 for long runs; smaller for short ones).
    public let decay: Double
    /// The averaged copies, keyed as the parameters.
    public private(set) var shadow: [String: Tensor]
    let parameters: [(key: String, tensor: Tensor)]

    /// Starts the average at the current weights.
    public init(_ parameters: [(key: String, tensor: Tensor)], decay: Double) {
        precondition(decay >= 0 && decay <= 1, "EMA: decay must be in [0, 1], got \(decay)")
        self.decay = decay
        self.parameters = parameters
        shadow = Dictionary(uniqueKeysWithValues: parameters.map { ($0.key, $0.tensor.to(.float32).detached().copy()) })
    }

    /// The decay used at update number `step` (0-based) with warm-up: min(decay, (1 + step) / (10 + step)), the
    /// schedule of TensorFlow's `ExponentialMovingAverage(num_updates:)`. Early in a run the average then follows the
    /// fast-changing weights instead of holding on to the random initialisation for ~1/(1 − decay) steps.
    public func warmedUpDecay(step: Int) -> Double {
        min(decay, Double(1 + step) / Double(10 + step))
    }

    /// Folds the current weights into the average.
    /// - Parameter step: the 0-based number of this update, for the warm-up (`warmedUpDecay`); nil uses `decay`
    ///   from the first update.
    public func update(step: Int? = nil) {
        let d = Float(step.map(warmedUpDecay) ?? decay)
        for (key, p) in parameters {
            let s = shadow[key]!.storage.pointer(as: Float.self), w = p.storage.pointer(as: Float.self)
            Parallel.forEach(p.count, grain: 65536) { range in
                for j in range { s[j] = d * s[j] + (1 - d) * w[j] }
            }
        }
    }

    /// Writes the averaged weights into `parameters` with the same keys.
    public func copy(to parameters: [(key: String, tensor: Tensor)]) {
        for (key, p) in parameters { if let s = shadow[key] { p.assign(s) } }
    }

    /// Restarts the average of the parameters whose keys `where` accepts at their current weights (after those
    /// weights were changed outside the run, so the average does not mix the old ones in).
    public func restart(where accepts: (String) -> Bool) {
        for (key, p) in parameters where accepts(key) { shadow[key] = p.to(.float32).detached().copy() }
    }

    /// Replaces the average (when resuming).
    public func load(_ tensors: [String: Tensor]) throws {
        for (key, p) in parameters {
            guard let t = tensors[key] else { throw OptimizerStateError.missing("ema.\(key)") }
            guard t.shape == p.shape else { throw OptimizerStateError.shape("ema.\(key)", expected: p.shape, found: t.shape) }
            shadow[key] = t.to(.float32).detached().copy()
        }
    }
}
