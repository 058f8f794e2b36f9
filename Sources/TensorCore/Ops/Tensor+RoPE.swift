import Foundation

extension Tensor {
    /// Rotary position embedding with interleaved pairs: channels (2i, 2i+1) of every head are rotated by the
    /// token's angle,
    ///   out[2i]   = x[2i]·cos[2i]     − x[2i+1]·sin[2i]
    ///   out[2i+1] = x[2i+1]·cos[2i+1] + x[2i]·sin[2i+1],
    /// in one fused pass (and one for the backward, which rotates the gradient by −θ). Differentiable in `x` only;
    /// the tables are constants.
    /// - Parameters:
    ///   - x: (…, L, Nh, Dh), rank ≥ 3, Dh even; typically (B, L, Nh, Dh).
    ///   - cos: (L, Dh), broadcast over the leading axes and the heads (see `ropeTables`).
    ///   - sin: (L, Dh).
    /// - Returns: the shape of `x`.
    public static func applyRoPE(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
        precondition(x.rank >= 3, "applyRoPE: x must be (…, L, Nh, Dh), got \(x.shape)")
        let l = x.shape[x.rank - 3], dh = x.shape[x.rank - 1]
        precondition(dh % 2 == 0, "applyRoPE: head size must be even, got \(x.shape)")
        precondition(
            cos.shape == [l, dh] && sin.shape == [l, dh],
            "applyRoPE: cos \(cos.shape) and sin \(sin.shape) must be (L, Dh) = (\(l), \(dh)) for x \(x.shape)")
        precondition(
            cos.dtype == x.dtype && sin.dtype == x.dtype,
            "applyRoPE: dtypes of x (\(x.dtype)), cos (\(cos.dtype)) and sin (\(sin.dtype)) differ")
        _ = x.requireCompute("applyRoPE")
        let out = rotatePairs(x, cos: cos, sin: sin, inverse: false)
        return Autograd.record(out, op: "rope", inputs: [x, cos, sin], rule: GradientRules.rope(cos: cos, sin: sin))
    }

    /// Cosine and sine tables for `applyRoPE` from integer positions along one or more axes.
    ///
    /// Axis split convention: the Dh channels are cut into consecutive groups, axis 0 first: axis a owns
    /// `axisDims[a]` channels starting at `axisDims[0..<a].sum()`. Within its group, channel pair i (channels 2i and
    /// 2i+1 of the group) turns by the angle positions[token][a] · base^(−2i / axisDims[a]), the same angle for both
    /// channels of the pair. With one axis and `axisDims == [Dh]` this is the usual 1-D RoPE; for video, positions
    /// are (t, h, w) per token.
    /// - Parameters:
    ///   - positions: (L, number of axes): the integer position of each token along each axis.
    ///   - axisDims: channels per axis; each even, summing to Dh.
    ///   - base: the frequency base θ.
    ///   - dtype: the tables' dtype (angles are computed in Float64 first).
    /// - Returns: cos and sin, each (L, Dh).
    public static func ropeTables(
        positions: [[Int]], axisDims: [Int], base: Double = 10000, dtype: DType = .float32
    ) -> (cos: Tensor, sin: Tensor) {
        precondition(
            !axisDims.isEmpty && axisDims.allSatisfy { $0 > 0 && $0 % 2 == 0 },
            "ropeTables: axisDims \(axisDims) must be positive and even")
        precondition(
            positions.allSatisfy { $0.count == axisDims.count },
            "ropeTables: every token needs \(axisDims.count) positions (one per axis of \(axisDims))")
        let dh = axisDims.reduce(0, +)
        var cosValues = [Double](repeating: 0, count: positions.count * dh)
        var sinValues = cosValues
        for (token, position) in positions.enumerated() {
            var channel = token * dh
            for (a, dims) in axisDims.enumerated() {
                for i in 0..<dims / 2 {
                    let angle = Double(position[a]) * Foundation.pow(base, -Double(2 * i) / Double(dims))
                    let c = Foundation.cos(angle), s = Foundation.sin(angle)
                    cosValues[channel] = c
                    cosValues[channel + 1] = c
                    sinValues[channel] = s
                    sinValues[channel + 1] = s
                    channel += 2
                }
            }
        }
        let shape = [positions.count, dh]
        return (Tensor(shape: shape, scalars: cosValues).to(dtype), Tensor(shape: shape, scalars: sinValues).to(dtype))
    }

    /// The pair rotation of `applyRoPE` without autograd; `inverse` turns by −θ instead (the transpose), which is the
    /// backward pass. Float with Dh a multiple of 8 takes the vector path (`rotatePairsFloat`).
    static func rotatePairs(_ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool) -> Tensor {
        let l = x.shape[x.rank - 3], nh = x.shape[x.rank - 2], dh = x.shape[x.rank - 1]
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let tokens = x.count / Swift.max(1, nh * dh)  // (…, L) flattened
        if x.dtype == .float32 && dh % 8 == 0 {
            rotatePairsFloat(
                x.storage.pointer(as: Float.self), cos: cos.storage.pointer(as: Float.self),
                sin: sin.storage.pointer(as: Float.self), out.storage.pointer(as: Float.self), tokens: tokens, l: l,
                nh: nh, dh: dh, inverse: inverse)
            return out
        }
        func run<T: TensorScalar>(_: T.Type) {
            let px = x.storage.pointer(as: T.self), po = out.storage.pointer(as: T.self)
            let pc = cos.storage.pointer(as: T.self), ps = sin.storage.pointer(as: T.self)
            Parallel.forEach(tokens, grain: Swift.max(1, 16384 / Swift.max(1, nh * dh))) { range in
                for token in range {
                    let c = pc + (token % l) * dh, s = ps + (token % l) * dh
                    for h in 0..<nh {
                        let xi = px + (token * nh + h) * dh, o = po + (token * nh + h) * dh
                        for i in stride(from: 0, to: dh, by: 2) {
                            let a = xi[i], b = xi[i + 1]
                            if inverse {
                                // Transpose of the forward map: the sin of the other channel of the pair.
                                o[i] = a * c[i] + b * s[i + 1]
                                o[i + 1] = b * c[i + 1] - a * s[i]
                            } else {
                                o[i] = a * c[i] - b * s[i]
                                o[i + 1] = b * c[i + 1] + a * s[i + 1]
                            }
                        }
                    }
                }
            }
        }
        if x.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return out
    }

    /// The Float pair rotation eight lanes at a time (Dh a multiple of 8): out[j] = x[j]·cos[j] + x[j^1]·t[j], with
    /// the signed sine t (−sin[2i], +sin[2i+1] forward; +sin[2i+1], −sin[2i] inverse) built once per token for all
    /// its heads. Bit-identical to the scalar loop (a − b·s and a + b·(−s) round alike).
    static func rotatePairsFloat(
        _ x: UnsafePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        tokens: Int, l: Int, nh: Int, dh: Int, inverse: Bool
    ) {
        @inline(__always) func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
            UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        }
        Parallel.forEach(tokens, grain: Swift.max(1, 16384 / Swift.max(1, nh * dh))) { range in
            let t = UnsafeMutablePointer<Float>.allocate(capacity: dh)
            defer { t.deallocate() }
            for token in range {
                let c = cos + (token % l) * dh, s = sin + (token % l) * dh
                for i in stride(from: 0, to: dh, by: 2) {
                    if inverse {
                        t[i] = s[i + 1]
                        t[i + 1] = -s[i]
                    } else {
                        t[i] = -s[i]
                        t[i + 1] = s[i + 1]
                    }
                }
                for h in 0..<nh {
                    let xi = x + (token * nh + h) * dh, o = out + (token * nh + h) * dh
                    var j = 0
                    while j < dh {
                        let v = load(xi, j)
                        let swapped = SIMD8(v[1], v[0], v[3], v[2], v[5], v[4], v[7], v[6])
                        let r = v * load(c, j) + swapped * load(t, j)
                        UnsafeMutableRawPointer(o + j).storeBytes(of: r, as: SIMD8<Float>.self)
                        j += 8
                    }
                }
            }
        }
    }
}
