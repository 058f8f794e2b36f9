import Foundation

/// Farnebäck dense optical flow ("Two-Frame Motion Estimation Based on Polynomial Expansion", 2003), in Swift.
///
/// Each image is approximated around every pixel by a quadratic f(x) ≈ xᵀAx + bᵀx + c fitted with Gaussian weights
/// (the polynomial expansion). For a displacement d, f₂(x) = f₁(x − d) gives A₂ = A₁ and b₂ = b₁ − 2A₁d, so
/// d = −½ A⁻¹ (b₂ − b₁); the equations are averaged over a Gaussian neighbourhood and solved by least squares, refined
/// by a few iterations with the current estimate warping the second image's expansion, coarse to fine over a
/// pyramid. The parameters are OpenCV's usual ones (pyramid scale 0.5, polyN 5, polySigma 1.1, window 15, Gaussian).
public struct FarnebackFlow: Sendable {
    /// Pyramid levels besides the full resolution.
    public var levels = 3
    /// Polynomial expansion neighbourhood radius (polyN = 2·radius + 1).
    public var expansionRadius = 2
    /// Gaussian sigma of the expansion's applicability.
    public var expansionSigma: Float = 1.1
    /// Sigma of the Gaussian averaging window: OpenCV's Gaussian option for winsize 15 (sigma = ⌊15/2⌋ × 0.3).
    public var windowSigma: Float = 2.1
    /// Iterations per level.
    public var iterations = 3

    /// Default parameters.
    public init() {}

    /// Flow from `first` to `second` (same size): per pixel (dx, dy) in pixels, as two planes.
    public func flow(from first: GreyImage, to second: GreyImage) -> (dx: [Float], dy: [Float]) {
        precondition(first.width == second.width && first.height == second.height, "FarnebackFlow: sizes differ")
        var pyramid1 = [first]
        var pyramid2 = [second]
        for _ in 0..<levels where pyramid1.last!.width >= 16 && pyramid1.last!.height >= 16 {
            pyramid1.append(pyramid1.last!.halved())
            pyramid2.append(pyramid2.last!.halved())
        }
        var dx: [Float] = []
        var dy: [Float] = []
        for level in stride(from: pyramid1.count - 1, through: 0, by: -1) {
            let a = pyramid1[level]
            let b = pyramid2[level]
            if dx.isEmpty {
                dx = [Float](repeating: 0, count: a.values.count)
                dy = dx
            } else {
                (dx, dy) = upsample(dx, dy, from: pyramid1[level + 1], to: a)
            }
            let e1 = expand(a)
            let e2 = expand(b)
            for _ in 0..<iterations { (dx, dy) = update(e1, e2, dx, dy, width: a.width, height: a.height) }
        }
        return (dx, dy)
    }

    /// Mean flow magnitude, pixels.
    public func meanMagnitude(from first: GreyImage, to second: GreyImage) -> Double {
        let (dx, dy) = flow(from: first, to: second)
        var sum = 0.0
        for i in 0..<dx.count { sum += Double((dx[i] * dx[i] + dy[i] * dy[i]).squareRoot()) }
        return sum / Double(max(1, dx.count))
    }

    /// Per pixel quadratic coefficients: r2 = bx, r3 = by, r4 = axx, r5 = ayy, r6 = axy (the cross term, xy·r6).
    struct Expansion {
        var bx: [Float], by: [Float], axx: [Float], ayy: [Float], axy: [Float]
    }

    /// Polynomial expansion by separable correlations with g, g·x, g·x² and the inverse Gram matrix.
    func expand(_ image: GreyImage) -> Expansion {
        let n = expansionRadius
        let (w, h) = (image.width, image.height)
        var g = [Float](repeating: 0, count: 2 * n + 1)
        for i in -n...n { g[i + n] = exp(-Float(i * i) / (2 * expansionSigma * expansionSigma)) }
        let xg = (-n...n).map { Float($0) * g[$0 + n] }
        let xxg = (-n...n).map { Float($0 * $0) * g[$0 + n] }
        // Gram matrix of the basis {1, x, y, x², y², xy} under the separable weight g(x)g(y).
        var s0: Float = 0, s2: Float = 0, s4: Float = 0
        for i in -n...n {
            s0 += g[i + n]
            s2 += Float(i * i) * g[i + n]
            s4 += Float(i * i * i * i) * g[i + n]
        }
        let g11 = s0 * s0, gxx = s2 * s0, gx4 = s4 * s0, gxxyy = s2 * s2
        // The {1, x², y²} block [[g11, gxx, gxx], [gxx, gx4, gxxyy], [gxx, gxxyy, gx4]]: solve for the x², y² rows.
        let m = [
            [Double(g11), Double(gxx), Double(gxx)], [Double(gxx), Double(gx4), Double(gxxyy)],
            [Double(gxx), Double(gxxyy), Double(gx4)],
        ]
        let inverse = invert3(m)
        func correlate(_ horizontal: [Float], _ vertical: [Float]) -> [Float] {
            separableFilter(image.values, width: w, height: h, horizontal: horizontal, vertical: vertical)
        }
        let r1 = correlate(g, g)
        let rx = correlate(xg, g)
        let ry = correlate(g, xg)
        let rxx = correlate(xxg, g)
        let ryy = correlate(g, xxg)
        let rxy = correlate(xg, xg)
        var e = Expansion(bx: rx, by: ry, axx: rxx, ayy: ryy, axy: rxy)
        let (i10, i11, i12) = (Float(inverse[1][0]), Float(inverse[1][1]), Float(inverse[1][2]))
        let (i20, i21, i22) = (Float(inverse[2][0]), Float(inverse[2][1]), Float(inverse[2][2]))
        for i in 0..<(w * h) {
            e.bx[i] = rx[i] / gxx
            e.by[i] = ry[i] / gxx
            e.axx[i] = i10 * r1[i] + i11 * rxx[i] + i12 * ryy[i]
            e.ayy[i] = i20 * r1[i] + i21 * rxx[i] + i22 * ryy[i]
            e.axy[i] = rxy[i] / gxxyy
        }
        return e
    }

    /// One refinement: per pixel the normal equations of A d = Δb, Gaussian-averaged, solved for d.
    func update(_ e1: Expansion, _ e2: Expansion, _ dx: [Float], _ dy: [Float], width w: Int, height h: Int)
        -> ([Float], [Float])
    {
        let count = w * h
        // Terms of GᵀG and Gᵀh for G = [[a11, a12], [a12, a22]] (A with the xy coefficient halved).
        var t11 = [Float](repeating: 0, count: count), t12 = t11, t22 = t11, h1 = t11, h2 = t11
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                // Sample the second expansion at x + d (nearest pixel, clamped).
                let sx = min(w - 1, max(0, Int((Float(x) + dx[i]).rounded())))
                let sy = min(h - 1, max(0, Int((Float(y) + dy[i]).rounded())))
                let j = sy * w + sx
                let a11 = (e1.axx[i] + e2.axx[j]) / 2
                let a22 = (e1.ayy[i] + e2.ayy[j]) / 2
                let a12 = (e1.axy[i] + e2.axy[j]) / 4
                var b1 = -(e2.bx[j] - e1.bx[i]) / 2
                var b2 = -(e2.by[j] - e1.by[i]) / 2
                // The prior displacement used to sample was rounded; add back A·d_prior so we solve for the full d.
                let px = Float(sx - x), py = Float(sy - y)
                b1 += a11 * px + a12 * py
                b2 += a12 * px + a22 * py
                t11[i] = a11 * a11 + a12 * a12
                t12[i] = a12 * (a11 + a22)
                t22[i] = a12 * a12 + a22 * a22
                h1[i] = a11 * b1 + a12 * b2
                h2[i] = a12 * b1 + a22 * b2
            }
        }
        let blur = { (v: [Float]) in gaussianBlur(v, width: w, height: h, sigma: self.windowSigma) }
        let (s11, s12, s22, g1, g2) = (blur(t11), blur(t12), blur(t22), blur(h1), blur(h2))
        var nx = dx, ny = dy
        for i in 0..<count {
            let det = s11[i] * s22[i] - s12[i] * s12[i]
            guard abs(det) > 1e-9 else { continue }
            nx[i] = (s22[i] * g1[i] - s12[i] * g2[i]) / det
            ny[i] = (s11[i] * g2[i] - s12[i] * g1[i]) / det
        }
        return (nx, ny)
    }

    private func upsample(_ dx: [Float], _ dy: [Float], from small: GreyImage, to large: GreyImage) -> (
        [Float], [Float]
    ) {
        var ux = [Float](repeating: 0, count: large.values.count), uy = ux
        let sx = Float(large.width) / Float(small.width), sy = Float(large.height) / Float(small.height)
        for y in 0..<large.height {
            let ys = min(small.height - 1, Int(Float(y) / sy))
            for x in 0..<large.width {
                let xs = min(small.width - 1, Int(Float(x) / sx))
                ux[y * large.width + x] = dx[ys * small.width + xs] * sx
                uy[y * large.width + x] = dy[ys * small.width + xs] * sy
            }
        }
        return (ux, uy)
    }
}

/// Separable Gaussian blur with clamped borders (radius 3σ).
func gaussianBlur(_ v: [Float], width w: Int, height h: Int, sigma: Float) -> [Float] {
    let r = max(1, Int((3 * sigma).rounded(.up)))
    var k = (-r...r).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = k.reduce(0, +)
    k = k.map { $0 / total }
    return separableFilter(v, width: w, height: h, horizontal: k, vertical: k)
}

/// Correlation with a separable kernel (row kernel then column kernel, each of odd length), borders clamped.
/// The interior runs without clamping; this is the inner loop of the optical flow.
func separableFilter(_ v: [Float], width w: Int, height h: Int, horizontal: [Float], vertical: [Float]) -> [Float] {
    let rx = horizontal.count / 2
    let ry = vertical.count / 2
    var tmp = [Float](repeating: 0, count: w * h)
    var out = [Float](repeating: 0, count: w * h)
    v.withUnsafeBufferPointer { src in
        tmp.withUnsafeMutableBufferPointer { mid in
            horizontal.withUnsafeBufferPointer { k in
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w {
                        var s: Float = 0
                        if x >= rx && x < w - rx {
                            let base = row + x - rx
                            for j in 0..<k.count { s += k[j] * src[base + j] }
                        } else {
                            for j in 0..<k.count { s += k[j] * src[row + min(w - 1, max(0, x + j - rx))] }
                        }
                        mid[row + x] = s
                    }
                }
            }
        }
    }
    tmp.withUnsafeBufferPointer { mid in
        out.withUnsafeMutableBufferPointer { dst in
            vertical.withUnsafeBufferPointer { k in
                for y in 0..<h {
                    let row = y * w
                    if y >= ry && y < h - ry {
                        // Whole rows at once: contiguous, so the compiler vectorises across x.
                        for j in 0..<k.count {
                            let weight = k[j]
                            let source = (y + j - ry) * w
                            for x in 0..<w { dst[row + x] += weight * mid[source + x] }
                        }
                    } else {
                        for j in 0..<k.count {
                            let weight = k[j]
                            let source = min(h - 1, max(0, y + j - ry)) * w
                            for x in 0..<w { dst[row + x] += weight * mid[source + x] }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Inverse of a 3×3 matrix by cofactors.
func invert3(_ m: [[Double]]) -> [[Double]] {
    let a = m[0][0], b = m[0][1], c = m[0][2], d = m[1][0], e = m[1][1], f = m[1][2], g = m[2][0], h = m[2][1],
        i = m[2][2]
    let det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return [
        [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
        [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
        [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
    ]
}
