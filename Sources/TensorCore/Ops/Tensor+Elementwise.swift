import Foundation

/// Binary elementwise operations (NumPy broadcasting).
public enum BinaryOp: String, Sendable {
    case add, sub, mul, div, maximum, minimum, pow
}

/// Unary elementwise operations.
public enum UnaryOp: String, Sendable {
    case neg, exp, log, sqrt, rsqrt, tanh, sigmoid, silu, geluExact, geluTanh, relu, abs, square, sin, cos
}

/// Pointwise math shared by forward kernels and gradient rules.
public enum Pointwise {
    @inline(__always) public static func sigmoid<T: TensorScalar>(_ x: T) -> T { 1 / (1 + T.exp(-x)) }
    /// tanh-approximated GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    @inline(__always) public static func geluTanh<T: TensorScalar>(_ x: T) -> T {
        let c = T(0.7978845608028654)
        return 0.5 * x * (1 + T.tanh(c * (x + T(0.044715) * x * x * x)))
    }
    /// Exact GELU: x·Φ(x).
    @inline(__always) public static func geluExact<T: TensorScalar>(_ x: T) -> T {
        0.5 * x * (1 + T.erf(x * T(0.7071067811865476)))
    }

    @inline(__always) public static func apply<T: TensorScalar>(_ op: UnaryOp, _ x: T) -> T {
        switch op {
        case .neg: return -x
        case .exp: return T.exp(x)
        case .log: return T.log(x)
        case .sqrt: return x.squareRoot()
        case .rsqrt: return 1 / x.squareRoot()
        case .tanh: return T.tanh(x)
        case .sigmoid: return sigmoid(x)
        case .silu: return x * sigmoid(x)
        case .geluExact: return geluExact(x)
        case .geluTanh: return geluTanh(x)
        case .relu: return x > 0 ? x : 0
        case .abs: return Swift.abs(x)
        case .square: return x * x
        case .sin: return T.sin(x)
        case .cos: return T.cos(x)
        }
    }

    /// d op(x)/dx, given x and y = op(x).
    @inline(__always) public static func derivative<T: TensorScalar>(_ op: UnaryOp, x: T, y: T) -> T {
        switch op {
        case .neg: return -1
        case .exp: return y
        case .log: return 1 / x
        case .sqrt: return 0.5 / y
        case .rsqrt: return -0.5 * y * y * y
        case .tanh: return 1 - y * y
        case .sigmoid: return y * (1 - y)
        case .silu:
            let s = sigmoid(x)
            return s * (1 + x * (1 - s))
        case .geluExact:
            let cdf = 0.5 * (1 + T.erf(x * T(0.7071067811865476)))
            let pdf = T.exp(-0.5 * x * x) * T(0.3989422804014327)
            return cdf + x * pdf
        case .geluTanh:
            let c = T(0.7978845608028654)
            let inner = c * (x + T(0.044715) * x * x * x)
            let th = T.tanh(inner)
            return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * T(0.044715) * x * x)
        case .relu: return x > 0 ? 1 : 0
        case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .square: return 2 * x
        case .sin: return T.cos(x)
        case .cos: return -T.sin(x)
        }
    }
}

extension Tensor {
    /// Stops with a message unless `dtype` is a compute type; returns true for float64.
    @usableFromInline
    func requireCompute(_ op: String) -> Bool {
        precondition(dtype.isCompute, "\(op): tensor of dtype \(dtype) must be converted with to(.float32) first")
        return dtype == .float64
    }

    /// The elementwise binary op `op` with broadcasting.
    public static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.dtype == b.dtype, "\(op.rawValue): dtypes \(a.dtype) and \(b.dtype) differ")
        let shape = Shape.broadcast(a.shape, b.shape, op: op.rawValue)
        let out = Tensor(uninitializedShape: shape, dtype: a.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            let pa = a.storage.pointer(as: T.self), pb = b.storage.pointer(as: T.self)
            let po = out.storage.pointer(as: T.self)
            let sa = Shape.broadcastStrides(a.shape, to: shape), sb = Shape.broadcastStrides(b.shape, to: shape)
            switch op {
            case .add: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 + $1 }
            case .sub: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 - $1 }
            case .mul: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 * $1 }
            case .div: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 / $1 }
            case .maximum: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 >= $1 ? $0 : $1 }
            case .minimum: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { $0 <= $1 ? $0 : $1 }
            case .pow: BroadcastKernel.binary(pa, sa, pb, sb, po, shape) { T.pow($0, $1) }
            }
        }
        if a.requireCompute(op.rawValue) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(out, op: op.rawValue, inputs: [a, b], rule: GradientRules.binary(op, a, b, out))
    }

    /// The elementwise unary op `op`.
    public func unary(_ op: UnaryOp) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        func run<T: TensorScalar>(_: T.Type) {
            let px = storage.pointer(as: T.self), po = out.storage.pointer(as: T.self)
            if T.self == Float.self && VectorUnary.supports(op) {
                VectorUnary.apply(op, storage.pointer(as: Float.self), out.storage.pointer(as: Float.self), count)
                return
            }
            switch op {
            case .exp: BroadcastKernel.unary(px, po, count) { T.exp($0) }
            case .silu: BroadcastKernel.unary(px, po, count) { $0 * Pointwise.sigmoid($0) }
            case .geluTanh: BroadcastKernel.unary(px, po, count) { Pointwise.geluTanh($0) }
            default: BroadcastKernel.unary(px, po, count) { Pointwise.apply(op, $0) }
            }
        }
        if requireCompute(op.rawValue) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(out, op: op.rawValue, inputs: [self], rule: GradientRules.unary(op, self, out))
    }

    /// A rank-0 tensor of this tensor's dtype holding `value`, for mixing scalars into broadcast ops.
    public func scalar(_ value: Double) -> Tensor { Tensor.full([], value, dtype: dtype) }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b) }
    public static func + (a: Tensor, b: Double) -> Tensor { binary(.add, a, a.scalar(b)) }
    public static func - (a: Tensor, b: Double) -> Tensor { binary(.sub, a, a.scalar(b)) }
    public static func * (a: Tensor, b: Double) -> Tensor { binary(.mul, a, a.scalar(b)) }
    public static func / (a: Tensor, b: Double) -> Tensor { binary(.div, a, a.scalar(b)) }
    public static func + (a: Double, b: Tensor) -> Tensor { binary(.add, b.scalar(a), b) }
    public static func - (a: Double, b: Tensor) -> Tensor { binary(.sub, b.scalar(a), b) }
    public static func * (a: Double, b: Tensor) -> Tensor { binary(.mul, b.scalar(a), b) }
    public static func / (a: Double, b: Tensor) -> Tensor { binary(.div, b.scalar(a), b) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(.neg) }

    public func exp() -> Tensor { unary(.exp) }
    public func log() -> Tensor { unary(.log) }
    public func sqrt() -> Tensor { unary(.sqrt) }
    public func rsqrt() -> Tensor { unary(.rsqrt) }
    public func tanh() -> Tensor { unary(.tanh) }
    public func sigmoid() -> Tensor { unary(.sigmoid) }
    public func silu() -> Tensor { unary(.silu) }
    public func relu() -> Tensor { unary(.relu) }
    public func abs() -> Tensor { unary(.abs) }
    public func square() -> Tensor { unary(.square) }
    public func sin() -> Tensor { unary(.sin) }
    public func cos() -> Tensor { unary(.cos) }
    /// GELU; `approximateTanh` selects the tanh approximation (PyTorch's `approximate='tanh'`).
    public func gelu(approximateTanh: Bool = false) -> Tensor { unary(approximateTanh ? .geluTanh : .geluExact) }
    /// Elementwise power with a tensor exponent.
    public func pow(_ exponent: Tensor) -> Tensor { Tensor.binary(.pow, self, exponent) }
    /// Elementwise power with a scalar exponent.
    public func pow(_ exponent: Double) -> Tensor {
        if exponent == 2 { return square() }
        return Tensor.binary(.pow, self, scalar(exponent))
    }
    /// Elementwise maximum with broadcasting (ties pass the gradient to `self`).
    public func maximum(_ other: Tensor) -> Tensor { Tensor.binary(.maximum, self, other) }
    /// Elementwise minimum with broadcasting (ties pass the gradient to `self`).
    public func minimum(_ other: Tensor) -> Tensor { Tensor.binary(.minimum, self, other) }

    /// Values limited to [min, max]; the gradient is zero where the bound was applied.
    public func clamp(min lower: Double? = nil, max upper: Double? = nil) -> Tensor {
        var r = self
        if let lower { r = r.maximum(scalar(lower)) }
        if let upper { r = r.minimum(scalar(upper)) }
        return r
    }
}

extension Tensor {
    /// 1 where self ≥ other (broadcast), else 0. Not differentiable.
    public func isGreaterOrEqual(_ other: Tensor) -> Tensor { Tensor.compareMask(self, other, greaterOrEqual: true) }
}
