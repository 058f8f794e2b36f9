import TensorCore

/// Draws a laid-out scene: anti-aliased shapes over a black background, at any size and frame count.
///
/// Anti-aliasing is by coverage: each pixel's coverage of a shape is the fraction of a 4×4 grid of sample points
/// (at ((i + ½)/4, (j + ½)/4) inside the pixel) that fall in the shape, so edges take 17 levels and the result is
/// exact for the sample grid, deterministic and resolution independent. Objects are composited in order, each over
/// what is below with its coverage as alpha (layouts never overlap them, so order only matters at touching pixels).
public enum ShapesRenderer {
    /// Supersampling grid per pixel side.
    public static let samplesPerSide = 4

    /// The scene as a float32 video `(3, T, H, W)` with values in [-1, 1] (black is −1).
    public static func render(
        _ attributes: SceneAttributes, layout: SceneLayout, width: Int, height: Int, frames: Int
    ) -> Tensor {
        let plane = width * height
        var values = [Float](repeating: -1, count: 3 * frames * plane)
        let n = samplesPerSide, inverseSamples = 1 / Double(n * n)
        var coverage = [Double]()
        for t in 0..<frames {
            for (i, object) in attributes.objects.enumerated() {
                let c = layout.center(i, frame: t, of: frames)
                let half = layout.extents[i] / 2
                let x0 = max(0, Int((c.x - half).rounded(.down))), x1 = min(width - 1, Int((c.x + half).rounded(.up)))
                let y0 = max(0, Int((c.y - half).rounded(.down))), y1 = min(height - 1, Int((c.y + half).rounded(.up)))
                guard x0 <= x1, y0 <= y1 else { continue }
                let rgb = object.color.rgb
                let colour = [Double(rgb.red), Double(rgb.green), Double(rgb.blue)].map { $0 / 127.5 - 1 }
                coverage = [Double](repeating: 0, count: (x1 - x0 + 1) * (y1 - y0 + 1))
                for y in y0...y1 {
                    for x in x0...x1 {
                        var inside = 0
                        for j in 0..<n {
                            let py = Double(y) + (Double(j) + 0.5) / Double(n) - c.y
                            for k in 0..<n {
                                let px = Double(x) + (Double(k) + 0.5) / Double(n) - c.x
                                if contains(object.shape, px, py, half: half) { inside += 1 }
                            }
                        }
                        coverage[(y - y0) * (x1 - x0 + 1) + x - x0] = Double(inside) * inverseSamples
                    }
                }
                for y in y0...y1 {
                    for x in x0...x1 {
                        let a = coverage[(y - y0) * (x1 - x0 + 1) + x - x0]
                        guard a > 0 else { continue }
                        for ch in 0..<3 {
                            let index = (ch * frames + t) * plane + y * width + x
                            values[index] = Float(Double(values[index]) * (1 - a) + colour[ch] * a)
                        }
                    }
                }
            }
        }
        return Tensor(shape: [3, frames, height, width], scalars: values)
    }

    /// Whether the point (dx, dy) relative to the centre lies in the shape of half-extent `half`.
    @inline(__always)
    static func contains(_ shape: ShapeKind, _ dx: Double, _ dy: Double, half: Double) -> Bool {
        switch shape {
        case .circle: return dx * dx + dy * dy <= half * half
        case .square: return abs(dx) <= half && abs(dy) <= half
        case .triangle:
            // Apex at (0, −half), base from (−half, half) to (half, half): the half width at depth d below the apex
            // is d / 2.
            let depth = dy + half
            return depth >= 0 && dy <= half && abs(dx) <= depth / 2
        }
    }
}
