import Foundation

/// Learning rate as a function of the step: linear warm-up, then constant or cosine decay.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Decay: String, Codable, Sendable { case constant, cosine }

    /// Peak learning rate, reached at the end of warm-up.
    public var peak: Double
    /// Steps of linear warm-up from 0 (typical: 1000 for large models, 0–100 for small).
    public var warmupSteps: Int
    /// What follows warm-up.
    public var decay: Decay
    /// Total steps (the cosine reaches `minimum` here).
    public var totalSteps: Int
    /// Floor of the cosine.
    public var minimum: Double

    public init(peak: Double, warmupSteps: Int = 0, decay: Decay = .constant, totalSteps: Int = 0, minimum: Double = 0) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.decay = decay
        self.totalSteps = totalSteps
        self.minimum = minimum
    }

    /// The rate for update number `step` (0-based).
    public func callAsFunction(_ step: Int) -> Double {
        if warmupSteps > 0 && step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        switch decay {
        case .constant: return peak
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, Double(step - warmupSteps) / Double(span))
            return minimum + (peak - minimum) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
