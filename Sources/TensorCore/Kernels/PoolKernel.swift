/// The index arithmetic of a 3-D window op over planes (N·C) of (T, H, W); 2-D ops are the case T = 1.
struct PoolGeometry: Sendable {
    /// Independent planes (N·C).
    let planes: Int
    /// Input extents.
    let t: Int, h: Int, w: Int
    /// Window extents (average pooling) or scale factors (upsampling).
    let kt: Int, kh: Int, kw: Int
    /// Window strides (average pooling; unused by upsampling).
    let st: Int, sh: Int, sw: Int
    /// Output extents.
    let ot: Int, oh: Int, ow: Int

    /// Average pooling without padding: out = (in − kernel) / stride + 1 per axis.
    init(planes: Int, input: [Int], kernel: [Int], stride: [Int]) {
        self.planes = planes
        (t, h, w) = (input[0], input[1], input[2])
        (kt, kh, kw) = (kernel[0], kernel[1], kernel[2])
        (st, sh, sw) = (stride[0], stride[1], stride[2])
        ot = (t - kt) / st + 1
        oh = (h - kh) / sh + 1
        ow = (w - kw) / sw + 1
    }

    /// Nearest upsampling by integer `scale`: out = in · scale per axis.
    init(planes: Int, input: [Int], scale: [Int]) {
        self.planes = planes
        (t, h, w) = (input[0], input[1], input[2])
        (kt, kh, kw) = (scale[0], scale[1], scale[2])
        (st, sh, sw) = (1, 1, 1)
        (ot, oh, ow) = (t * kt, h * kh, w * kw)
    }

    var inputVolume: Int { t * h * w }
    var outputVolume: Int { ot * oh * ow }
}

/// Average pooling and nearest upsampling, forward and backward. Every kernel writes its whole destination.
enum PoolKernel {
    /// out[p, to, ho, wo] = mean of the kT×kH×kW window of x at (to·sT, ho·sH, wo·sW).
    static func avgPoolForward<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ g: PoolGeometry
    ) {
        let scale = 1 / T(g.kt * g.kh * g.kw)
        let rows = g.planes * g.ot * g.oh
        Parallel.forEach(rows, grain: Swift.max(1, 4096 / Swift.max(g.ow * g.kt * g.kh * g.kw, 1))) { range in
            for row in range {
                let p = row / (g.ot * g.oh), to = (row / g.oh) % g.ot, ho = row % g.oh
                let dst = out + row * g.ow
                dst.update(repeating: 0, count: g.ow)
                for i in 0..<g.kt {
                    for j in 0..<g.kh {
                        let src = x + ((p * g.t + to * g.st + i) * g.h + ho * g.sh + j) * g.w
                        for wo in 0..<g.ow {
                            var s: T = 0
                            for l in 0..<g.kw { s += src[wo * g.sw + l] }
                            dst[wo] += s
                        }
                    }
                }
                for wo in 0..<g.ow { dst[wo] *= scale }
            }
        }
    }

    /// dx = the adjoint of `avgPoolForward`: each output gradient spread evenly over its window (overlaps add up).
    /// Parallel over planes, so overlapping windows never race.
    static func avgPoolBackward<T: TensorScalar>(
        _ gradOut: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ g: PoolGeometry
    ) {
        let scale = 1 / T(g.kt * g.kh * g.kw)
        Parallel.forEach(g.planes, grain: Swift.max(1, 32768 / Swift.max(g.inputVolume, 1))) { range in
            for p in range {
                let plane = dx + p * g.inputVolume
                plane.update(repeating: 0, count: g.inputVolume)
                for to in 0..<g.ot {
                    for ho in 0..<g.oh {
                        let src = gradOut + ((p * g.ot + to) * g.oh + ho) * g.ow
                        for i in 0..<g.kt {
                            for j in 0..<g.kh {
                                let dst = plane + ((to * g.st + i) * g.h + ho * g.sh + j) * g.w
                                for wo in 0..<g.ow {
                                    let v = src[wo] * scale
                                    for l in 0..<g.kw { dst[wo * g.sw + l] += v }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out[p, t·sT + i, h·sH + j, w·sW + l] = x[p, t, h, w] (scale factors in `g.kt`, `g.kh`, `g.kw`).
    static func upsampleForward<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ g: PoolGeometry
    ) {
        let rows = g.planes * g.ot * g.oh
        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(g.ow, 1))) { range in
            for row in range {
                let p = row / (g.ot * g.oh), to = (row / g.oh) % g.ot, ho = row % g.oh
                let src = x + ((p * g.t + to / g.kt) * g.h + ho / g.kh) * g.w
                let dst = out + row * g.ow
                if g.kw == 1 {
                    dst.update(from: src, count: g.w)
                } else {
                    for wi in 0..<g.w {
                        let v = src[wi]
                        for l in 0..<g.kw { dst[wi * g.kw + l] = v }
                    }
                }
            }
        }
    }

    /// dx[p, t, h, w] = Σ of the gradient over the sT×sH×sW block that copied x[p, t, h, w].
    static func upsampleBackward<T: TensorScalar>(
        _ gradOut: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ g: PoolGeometry
    ) {
        let rows = g.planes * g.t * g.h
        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(g.ow * g.kt * g.kh, 1))) { range in
            for row in range {
                let p = row / (g.t * g.h), t = (row / g.h) % g.t, h = row % g.h
                let dst = dx + row * g.w
                dst.update(repeating: 0, count: g.w)
                for i in 0..<g.kt {
                    for j in 0..<g.kh {
                        let src = gradOut + ((p * g.ot + t * g.kt + i) * g.oh + h * g.kh + j) * g.ow
                        for wi in 0..<g.w {
                            var s: T = 0
                            for l in 0..<g.kw { s += src[wi * g.kw + l] }
                            dst[wi] += s
                        }
                    }
                }
            }
        }
    }
}
