import Foundation
import TensorCore

/// Adam with decoupled weight decay (Loshchilov & Hutter), exactly as `torch.optim.AdamW`:
///
///     p ← p·(1 − lr·λ)
///     m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
///     p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
///
/// State is kept in float32 beside each parameter (fp32 master weights). Parameters without a gradient are skipped.
public final class AdamW {
    /// Hyper-parameters (learning rate is read each step, so a schedule can change it).
    public struct Options: Codable, Sendable {
        public var learningRate: Double = 1e-4  // typical 1e-4 for DiT-style models
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var epsilon: Double = 1e-8
        public var weightDecay: Double = 0.01
        public init(
            learningRate: Double = 1e-4, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
            weightDecay: Double = 0.01
        ) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    public var options: Options
    /// Parameters updated, with their keys (used to name the state when saving).
    public let parameters: [(key: String, tensor: Tensor)]
    /// Per-parameter weight decay (0 for keys excluded by the `decayFilter` given at init).
    let decay: [Double]
    /// First and second moments, allocated on first use.
    var firstMoment: [Tensor?]
    var secondMoment: [Tensor?]
    /// Updates taken so far.
    public private(set) var step = 0

    /// - Parameters:
    ///   - parameters: (key, tensor) pairs, typically `model.namedParameters()`; frozen ones are dropped.
    ///   - decayFilter: which keys get weight decay (default all, as PyTorch's single group).
    public init(
        _ parameters: [(key: String, tensor: Tensor)], options: Options = Options(),
        decayFilter: (String) -> Bool = { _ in true }
    ) {
        self.parameters = parameters.filter { $0.tensor.requiresGrad }
        self.options = options
        decay = self.parameters.map { decayFilter($0.key) ? 1 : 0 }
        firstMoment = Array(repeating: nil, count: self.parameters.count)
        secondMoment = Array(repeating: nil, count: self.parameters.count)
    }

    /// One update from the parameters' accumulated gradients.
    public func update() {
        step += 1
        let lr = options.learningRate, b1 = options.beta1, b2 = options.beta2, eps = options.epsilon
        let bc1 = 1 - Foundation.pow(b1, Double(step)), bc2 = 1 - Foundation.pow(b2, Double(step))
        let stepSize = Float(lr / bc1), bc2Root = Float(bc2.squareRoot())
        for (i, (_, p)) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            precondition(p.dtype == .float32 && g.dtype == .float32, "AdamW: parameters and gradients must be float32")
            if firstMoment[i] == nil {
                firstMoment[i] = Tensor.zeros(p.shape)
                secondMoment[i] = Tensor.zeros(p.shape)
            }
            let m = firstMoment[i]!.storage.pointer(as: Float.self), v = secondMoment[i]!.storage.pointer(as: Float.self)
            let pp = p.storage.pointer(as: Float.self), gp = g.storage.pointer(as: Float.self)
            let shrink = Float(1 - lr * options.weightDecay * decay[i])
            let fb1 = Float(b1), fb2 = Float(b2), feps = Float(eps)
            Parallel.forEach(p.count, grain: 16384) { range in
                // Sixteen lanes at a time, then the tail; the same operations in the same order as the scalar form,
                // so both give identical bits.
                typealias V = SIMD16<Float>
                var j = range.lowerBound
                while j + 16 <= range.upperBound {
                    let gj = UnsafeRawPointer(gp + j).loadUnaligned(as: V.self)
                    let mj = V(repeating: fb1) * UnsafeRawPointer(m + j).loadUnaligned(as: V.self)
                        + V(repeating: 1 - fb1) * gj
                    let vj = V(repeating: fb2) * UnsafeRawPointer(v + j).loadUnaligned(as: V.self)
                        + V(repeating: 1 - fb2) * gj * gj
                    let pj = UnsafeRawPointer(pp + j).loadUnaligned(as: V.self) * V(repeating: shrink)
                        - V(repeating: stepSize) * mj / (vj.squareRoot() / V(repeating: bc2Root) + V(repeating: feps))
                    UnsafeMutableRawPointer(m + j).storeBytes(of: mj, as: V.self)
                    UnsafeMutableRawPointer(v + j).storeBytes(of: vj, as: V.self)
                    UnsafeMutableRawPointer(pp + j).storeBytes(of: pj, as: V.self)
                    j += 16
                }
                while j < range.upperBound {
                    let gj = gp[j]
                    m[j] = fb1 * m[j] + (1 - fb1) * gj
                    v[j] = fb2 * v[j] + (1 - fb2) * gj * gj
                    pp[j] = pp[j] * shrink - stepSize * m[j] / (v[j].squareRoot() / bc2Root + feps)
                    j += 1
                }
            }
            p.storage.bumpVersion()
        }
    }

    /// The optimizer state as named tensors (`<key>.exp_avg`, `<key>.exp_avg_sq`, and `step`), for checkpoints.
    public func stateDictionary() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(shape: [1], scalars: [Double(step)]).to(.float32)]
        for (i, (key, _)) in parameters.enumerated() {
            if let m = firstMoment[i], let v = secondMoment[i] {
                out["\(key).exp_avg"] = m
                out["\(key).exp_avg_sq"] = v
            }
        }
        return out
    }

    /// Restores `stateDictionary()` output. Throws when a moment's shape does not match its parameter.
    public func loadStateDictionary(_ state: [String: Tensor]) throws {
        guard let s = state["step"] else { throw OptimizerStateError.missing("step") }
        step = Int(s.item())
        for (i, (key, p)) in parameters.enumerated() {
            guard let m = state["\(key).exp_avg"], let v = state["\(key).exp_avg_sq"] else {
                firstMoment[i] = nil
                secondMoment[i] = nil
                continue
            }
            guard m.shape == p.shape, v.shape == p.shape else {
                throw OptimizerStateError.shape(key, expected: p.shape, found: m.shape)
            }
            firstMoment[i] = m.to(.float32).detached()
            secondMoment[i] = v.to(.float32).detached()
        }
    }
}

/// Optimizer state that does not fit the parameters it is loaded for.
public enum OptimizerStateError: Error, CustomStringConvertible {
    case missing(String)
    case shape(String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .missing(let key): return "optimizer state: missing '\(key)'"
        case .shape(let key, let e, let f): return "optimizer state: '\(key)' has shape \(f), expected \(e)"
        }
    }
}
