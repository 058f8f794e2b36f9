import Foundation
import TensorCore

/// Classifier-free guidance (Ho & Salimans, 2022), optionally limited to an interval of flow times: at a time t
/// inside `interval` the field is f_u + w·(f_c − f_u), f_c the model on the prompt and f_u on the empty prompt (or a
/// negative prompt, which guidance then steers away from); elsewhere, and everywhere when w = 1, it is f_c alone and
/// the unconditional branch is not evaluated. The combination is linear, so it serves velocity and ε-prediction
/// models alike.
///
/// This is the only implementation of guidance: samplers take the field it returns, and generation builds its field
/// with `field(evaluating:)`, which packs both branches into one model call.
public struct ClassifierFreeGuidance: Equatable, Sendable {
    /// w: 1 is no guidance, larger follows the prompt more closely.
    public var scale: Double
    /// The flow times at which guidance applies; nil: every time.
    public var interval: GuidanceInterval?

    /// Guidance with scale w, at every time unless `interval` limits it.
    public init(scale: Double, interval: GuidanceInterval? = nil) {
        self.scale = scale
        self.interval = interval
    }

    /// Whether the step at flow time t takes the guided field: w ≠ 1 and t in the interval. Where false the
    /// unconditional branch is not needed.
    public func applies(at t: Double) -> Bool { scale != 1 && (interval?.contains(t) ?? true) }

    /// f_u + w·(f_c − f_u).
    public func combine(conditional: Tensor, unconditional: Tensor) -> Tensor {
        unconditional + (conditional - unconditional) * scale
    }

    /// The guided field of two separate fields.
    /// - Parameters: conditional: f_c; unconditional: f_u, evaluated (before f_c) only where `applies(at:)`.
    public func field(conditional: @escaping ModelField, unconditional: @escaping ModelField) -> ModelField {
        { x, t in
            guard applies(at: t) else { return conditional(x, t) }
            let fu = unconditional(x, t)
            return combine(conditional: conditional(x, t), unconditional: fu)
        }
    }

    /// A model that evaluates both branches in one call (e.g. packed into one sequence): given x, t and whether the
    /// unconditional branch is wanted, it returns f_c and, when wanted, f_u.
    public typealias JointEvaluation = (_ x: Tensor, _ t: Double, _ unconditional: Bool) -> (
        conditional: Tensor, unconditional: Tensor?
    )

    /// The guided field of a model that evaluates both branches in one call, asked for f_u only where
    /// `applies(at:)`.
    public func field(evaluating evaluate: @escaping JointEvaluation) -> ModelField {
        { x, t in
            let wanted = applies(at: t)
            let f = evaluate(x, t, wanted)
            guard wanted, let fu = f.unconditional else { return f.conditional }
            return combine(conditional: f.conditional, unconditional: fu)
        }
    }
}

/// The flow times at which classifier-free guidance is applied (Kynkäänniemi et al., 2024, "Applying guidance in a
/// limited interval improves sample and distribution quality"): a step whose time t (0 noise, 1 data) lies in
/// [lower, upper] takes the guided field, any other the conditional one, at half the cost. Stored in JSON as
/// [lo, hi].
public struct GuidanceInterval: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Bounds, 0 ≤ lower ≤ upper ≤ 1.
    public var lower: Double, upper: Double

    /// An interval; `isValid` checks its bounds.
    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    /// Parses "LO,HI" (e.g. "0,0.7").
    public init?(parsing text: String) {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1] else { return nil }
        self.init(lower: lo, upper: hi)
    }

    /// Whether guidance applies at flow time `t`: lower ≤ t ≤ upper.
    public func contains(_ t: Double) -> Bool { t >= lower && t <= upper }

    /// Whether the bounds are finite and 0 ≤ lower ≤ upper ≤ 1.
    public var isValid: Bool { lower.isFinite && upper.isFinite && 0 <= lower && lower <= upper && upper <= 1 }

    public var description: String { "\(lower),\(upper)" }

    public init(from decoder: Decoder) throws {
        let bounds = try decoder.singleValueContainer().decode([Double].self)
        guard bounds.count == 2 else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "guidance_interval is [lo, hi], got \(bounds.count) numbers"))
        }
        self.init(lower: bounds[0], upper: bounds[1])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode([lower, upper])
    }
}
