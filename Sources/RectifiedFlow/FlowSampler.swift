import TensorCore

/// A velocity field v(x, t): the model (with its text and guidance bound in), or a closed form in tests.
public typealias VelocityField = (_ x: Tensor, _ t: Double) -> Tensor

/// ODE samplers for rectified flow: integrate dx/dt = v(x, t) from t = 0 (noise) to t = 1 (data). Pure functions
/// over a velocity closure; they record no autograd graph.
public enum FlowSampler {
    /// The time grid: `steps` + 1 points from 0 to 1, uniform and then shifted (see `TimestepShift.apply`).
    public static func schedule(steps: Int, shift: Double = 1) -> [Double] {
        precondition(steps > 0, "schedule: steps must be positive, got \(steps)")
        return (0...steps).map { TimestepShift.apply(Double($0) / Double(steps), shift: shift) }
    }

    /// Euler: x ← x + (t_{i+1} − t_i)·v(x, t_i). First order; exact on straight paths.
    /// - Parameters:
    ///   - x: the starting noise x0.
    ///   - schedule: increasing times from `schedule(steps:shift:)`.
    ///   - velocity: v(x, t).
    ///   - onStep: called after each step with its index.
    /// - Returns: x at the schedule's last time.
    public static func euler(
        _ x: Tensor, schedule: [Double], velocity: VelocityField, onStep: ((Int) -> Void)? = nil
    ) -> Tensor {
        Autograd.inference {
            var x = x
            for i in 0..<(schedule.count - 1) {
                let h = schedule[i + 1] - schedule[i]
                x = x + velocity(x, schedule[i]) * h
                onStep?(i)
            }
            return x
        }
    }

    /// Heun (explicit trapezoid): a predictor Euler step, then the average of the velocities at both ends. Second
    /// order, two evaluations per step.
    /// - Parameters: as `euler`.
    public static func heun(
        _ x: Tensor, schedule: [Double], velocity: VelocityField, onStep: ((Int) -> Void)? = nil
    ) -> Tensor {
        Autograd.inference {
            var x = x
            for i in 0..<(schedule.count - 1) {
                let t = schedule[i], h = schedule[i + 1] - t
                let v1 = velocity(x, t)
                let predicted = x + v1 * h
                let v2 = velocity(predicted, schedule[i + 1])
                x = x + (v1 + v2) * (h / 2)
                onStep?(i)
            }
            return x
        }
    }

    /// Classifier-free guidance: v = v_u + w·(v_c − v_u). The unconditional field is the model on the empty prompt,
    /// or on a negative prompt, which the guidance then steers away from.
    /// - Parameters: conditional: v_c; unconditional: v_u; scale: w (1 is no guidance).
    public static func guided(
        conditional: @escaping VelocityField, unconditional: @escaping VelocityField, scale: Double
    ) -> VelocityField {
        { x, t in
            let vu = unconditional(x, t)
            return vu + (conditional(x, t) - vu) * scale
        }
    }
}
