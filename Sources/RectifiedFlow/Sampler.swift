import TensorCore

/// A network's output at latent x and flow time t (0 noise, 1 data), with its text and any guidance bound in: the
/// velocity for a rectified-flow sampler, the predicted noise ε̂ for a DDPM sampler (`Sampler.prediction`). A closed
/// form in tests.
public typealias ModelField = (_ x: Tensor, _ t: Double) -> Tensor

/// A model field that returns the velocity dx/dt.
public typealias VelocityField = ModelField

/// What a sampler's model field returns.
public enum SamplerPrediction: String, Sendable {
    /// The rectified-flow velocity x1 − x0.
    case velocity
    /// The DDPM baseline's noise ε.
    case noise
}

/// A sampler: turns noise x ~ N(0, I) into data by evaluating a model field step by step.
///
/// Every sampler, the rectified-flow ODE solvers and the DDPM baseline's, is a value of this one protocol, so that
/// guidance (`ClassifierFreeGuidance`), progress reporting and generation are written once against it. A sampler
/// carries its own steps (a time grid, or a β schedule's steps) and calls its field with flow times t, 1 at the
/// clean end; a DDPM sampler passes `DDPMSchedule.modelTime(step:)`, the time its network was trained on, so guidance
/// intervals mean the same under both. Samplers record no autograd graph.
public protocol Sampler {
    /// What the model field must return.
    var prediction: SamplerPrediction { get }
    /// The number of steps, which is the number of `onStep` calls of one `sample`.
    var stepCount: Int { get }
    /// Runs the sampler.
    /// - Parameters:
    ///   - noise: the starting point, N(0, I), any shape.
    ///   - model: the field the sampler integrates or denoises with (see `prediction`).
    ///   - onStep: called after each step with its index, 0 to `stepCount` − 1.
    /// - Returns: the sample, the shape of `noise`.
    func sample(_ noise: Tensor, model: ModelField, onStep: ((Int) -> Void)?) -> Tensor
}

extension Sampler {
    /// `sample(_:model:onStep:)` without progress.
    public func sample(_ noise: Tensor, model: ModelField) -> Tensor { sample(noise, model: model, onStep: nil) }
}

/// A rectified-flow ODE sampler: integrates dx/dt = v(x, t) over an increasing time grid, one `step` per interval.
/// The loop is written once here; a solver supplies only its step rule.
public protocol FlowODESampler: Sampler {
    /// Non-decreasing flow times, the first the noise end (0) and the last the data end (1) for a full sample.
    var times: [Double] { get }
    /// A sampler over `times`: at least two, non-decreasing.
    init(times: [Double])
    /// One step of the solver: x at time `t` to x at time `next`.
    func step(_ x: Tensor, from t: Double, to next: Double, velocity: VelocityField) -> Tensor
}

extension FlowODESampler {
    /// A sampler over `FlowSampler.schedule(steps:shift:)`: `steps` uniform intervals from 0 to 1, shifted by `shift`.
    public init(steps: Int, shift: Double = 1) { self.init(times: FlowSampler.schedule(steps: steps, shift: shift)) }

    public var prediction: SamplerPrediction { .velocity }

    public var stepCount: Int { times.count - 1 }

    public func sample(_ noise: Tensor, model: ModelField, onStep: ((Int) -> Void)?) -> Tensor {
        Autograd.inference {
            var x = noise
            for i in 0..<stepCount {
                x = step(x, from: times[i], to: times[i + 1], velocity: model)
                onStep?(i)
            }
            return x
        }
    }
}

/// Checks a time grid for a `FlowODESampler`.
private func checkedGrid(_ times: [Double], _ name: String) -> [Double] {
    precondition(
        times.count >= 2 && zip(times, times.dropFirst()).allSatisfy { $0 <= $1 },
        "\(name): the time grid must hold at least two non-decreasing times, got \(times)")
    return times
}

/// Euler: x ← x + h·v(x, t), h = t_{i+1} − t_i. First order, one evaluation per step; exact on straight paths, which
/// is what rectified flow trains towards.
public struct EulerSampler: FlowODESampler, Sendable {
    public let times: [Double]

    public init(times: [Double]) { self.times = checkedGrid(times, "EulerSampler") }

    public func step(_ x: Tensor, from t: Double, to next: Double, velocity: VelocityField) -> Tensor {
        x + velocity(x, t) * (next - t)
    }
}

/// Heun (the explicit trapezoid rule): an Euler predictor, then the mean of the velocities at both ends,
/// x ← x + h/2·(v(x, t) + v(x + h·v(x, t), t + h). Second order for two evaluations per step, which pays on the
/// curved paths of a model that is not yet straight.
public struct HeunSampler: FlowODESampler, Sendable {
    public let times: [Double]

    public init(times: [Double]) { self.times = checkedGrid(times, "HeunSampler") }

    public func step(_ x: Tensor, from t: Double, to next: Double, velocity: VelocityField) -> Tensor {
        let h = next - t
        let v1 = velocity(x, t)
        let predicted = x + v1 * h
        let v2 = velocity(predicted, next)
        return x + (v1 + v2) * (h / 2)
    }
}

/// The samplers a model folder (`"sampler"` in `model_index.json`) and `goku generate --sampler` choose from, by the
/// names they are written with. Adding a sampler is a case here and its line in `sampler(steps:shift:)`.
///
/// Only the rectified-flow samplers are kinds: model folders hold velocity models. The DDPM baseline's samplers
/// (`DDIMSampler`, `DDPMAncestralSampler`) are `Sampler`s too, built from the `DDPMSchedule` the model was trained
/// with, which a model folder does not record; a kind would name a sampler that no model folder can use.
public enum SamplerKind: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// `EulerSampler`.
    case euler
    /// `HeunSampler`.
    case heun

    /// A name that is not a sampler kind.
    public struct UnknownName: Error, Equatable, CustomStringConvertible {
        /// The name as given.
        public var name: String

        public var description: String {
            "unknown sampler '\(name)' (valid: \(SamplerKind.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
    }

    /// The kind named `name`, ignoring case ("Heun" is `heun`), as model folders and the command line have always
    /// been read.
    /// - Throws: `UnknownName`, whose description lists the valid names.
    public init(parsing name: String) throws {
        guard let kind = SamplerKind(rawValue: name.lowercased()) else { throw UnknownName(name: name) }
        self = kind
    }

    /// Reads the name as `init(parsing:)` does.
    /// - Throws: `DecodingError.dataCorrupted` at the field, naming the bad name and the valid ones.
    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: name) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public var description: String { rawValue }

    /// The sampler of this kind over `steps` steps of the grid shifted by `shift` (`FlowSampler.schedule`).
    public func sampler(steps: Int, shift: Double = 1) -> any Sampler {
        switch self {
        case .euler: return EulerSampler(steps: steps, shift: shift)
        case .heun: return HeunSampler(steps: steps, shift: shift)
        }
    }
}

/// The rectified-flow time grid, and the ODE samplers as functions.
public enum FlowSampler {
    /// The time grid: `steps` + 1 points from 0 to 1, uniform and then shifted (see `TimestepShift.apply`).
    public static func schedule(steps: Int, shift: Double = 1) -> [Double] {
        precondition(steps > 0, "schedule: steps must be positive, got \(steps)")
        return (0...steps).map { TimestepShift.apply(Double($0) / Double(steps), shift: shift) }
    }

    /// `EulerSampler(times: schedule).sample(x, model: velocity, onStep: onStep)`.
    public static func euler(
        _ x: Tensor, schedule: [Double], velocity: VelocityField, onStep: ((Int) -> Void)? = nil
    ) -> Tensor {
        EulerSampler(times: schedule).sample(x, model: velocity, onStep: onStep)
    }

    /// `HeunSampler(times: schedule).sample(x, model: velocity, onStep: onStep)`.
    public static func heun(
        _ x: Tensor, schedule: [Double], velocity: VelocityField, onStep: ((Int) -> Void)? = nil
    ) -> Tensor {
        HeunSampler(times: schedule).sample(x, model: velocity, onStep: onStep)
    }
}
