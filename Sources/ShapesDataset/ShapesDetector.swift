import Foundation
import TensorCore

/// One object found in a frame.
public struct DetectedObject: Codable, Hashable, Sendable {
    /// Colour by hue (white by low saturation).
    public var color: ShapeColor
    /// Shape by the best-matching template.
    public var shape: ShapeKind
    /// Size class by extent.
    public var size: ShapeSize
    /// Centroid `[x, y]` in pixels.
    public var center: [Double]
    /// Pixels in the component.
    public var area: Int
    /// Extent (√(area / fill ratio of the shape)) as a fraction of the frame's shorter side.
    public var extent: Double
}

/// A deterministic, analytic detector for Shapes frames: what an evaluation needs instead of a learned detector.
///
/// Per frame: a pixel is foreground when its brightest channel exceeds `foregroundThreshold` (0.4 on a 0…1 scale; the
/// background is black and every Shapes colour has a channel ≥ 0.82, so this is coverage ≈ ½ of an anti-aliased
/// edge). Foreground pixels form 4-connected components; components smaller than a quarter of a small triangle's
/// area are dropped as specks. Each component is measured:
/// - **colour**: the mean RGB of its core pixels (brightest channel > 0.6) → HSV; saturation < 0.35 is white, else the
///   palette colour of nearest hue (the hues of `ShapeColor.rgb`);
/// - **shape**: template matching by fill ratio, on a soft mask (brightness over the object's peak, in its box grown
///   by 2 pixels): for each shape, the template with the mask's mass (so its extent is √(mass / fill ratio), fill
///   ratios 1, π/4 and ½) centred on the mask's centroid, sharp or blurred by a few Gaussian widths; the shape of the
///   template of largest soft intersection over union wins. Unlike thresholds on the bounding box's fill ratio or
///   its corner pixels, this stays right when edges are soft or grainy (a test blurs and adds noise);
/// - **size**: the extent √(mass / fill ratio) of the detected shape over the frame's shorter side, small below
///   √(0.15·0.25) ≈ 0.194 (the geometric mean of the two sizes);
/// - **position**: the centroid of the soft mask.
/// Motion compares the first and last frames: the area-weighted centroid of all detected objects moves, as a
/// fraction of the frame, less than 0.1 (a third of `Motion.travel`) for static, else in the direction of its larger
/// component.
public enum ShapesDetector {
    /// Brightest-channel level (0…1) above which a pixel is foreground.
    public static let foregroundThreshold: Float = 0.4
    /// Brightest-channel level of the pixels whose mean gives a component's colour.
    public static let coreThreshold: Float = 0.6

    /// The objects of frame `t` of a video `(3, T, H, W)` in [-1, 1].
    public static func detect(_ video: Tensor, frame t: Int) -> [DetectedObject] {
        let frame = Frame(video, t)
        return detect(frame)
    }

    /// The objects of every frame of a video `(3, T, H, W)` in [-1, 1].
    public static func detectAll(_ video: Tensor) -> [[DetectedObject]] {
        precondition(
            video.rank == 4 && video.shape[0] == 3, "ShapesDetector: expected (3, T, H, W), got \(video.shape)")
        let values = video.scalars
        return (0..<video.shape[1]).map { detect(Frame(values: values, shape: video.shape, t: $0)) }
    }

    /// The scene's motion from per-frame detections: the displacement of the area-weighted centroid of everything
    /// detected, from the first frame to the last, as a fraction of the frame (nil when either frame is empty).
    ///
    /// Every object of a Shapes scene moves the same way, so the centroid of them all moves with them; unlike
    /// matching objects one by one it cannot confuse two identical objects that move past each other's places.
    public static func motion(_ detections: [[DetectedObject]], width: Int, height: Int) -> Motion? {
        guard detections.count > 1 else { return .static }
        func centroid(_ objects: [DetectedObject]) -> (Double, Double)? {
            let area = Double(objects.reduce(0) { $0 + $1.area })
            guard area > 0 else { return nil }
            return (
                objects.reduce(0) { $0 + $1.center[0] * Double($1.area) } / area,
                objects.reduce(0) { $0 + $1.center[1] * Double($1.area) } / area
            )
        }
        guard let a = centroid(detections[0]), let b = centroid(detections[detections.count - 1]) else { return nil }
        let dx = (b.0 - a.0) / Double(width), dy = (b.1 - a.1) / Double(height)
        if max(abs(dx), abs(dy)) < Motion.travel / 3 { return .static }
        return abs(dx) >= abs(dy) ? (dx < 0 ? .left : .right) : (dy < 0 ? .up : .down)
    }

    static func distance(_ a: DetectedObject, _ b: DetectedObject) -> Double {
        let dx = a.center[0] - b.center[0], dy = a.center[1] - b.center[1]
        return dx * dx + dy * dy
    }

    /// One frame's values on a 0…1 scale, channel-planar.
    struct Frame {
        let r: [Float], g: [Float], b: [Float]
        let width: Int, height: Int

        init(_ video: Tensor, _ t: Int) {
            precondition(
                video.rank == 4 && video.shape[0] == 3, "ShapesDetector: expected (3, T, H, W), got \(video.shape)")
            self.init(values: video.scalars, shape: video.shape, t: t)
        }

        init(values: [Float], shape: [Int], t: Int) {
            let (frames, h, w) = (shape[1], shape[2], shape[3])
            let plane = h * w
            func channel(_ c: Int) -> [Float] {
                let base = (c * frames + t) * plane
                return (0..<plane).map { (values[base + $0] + 1) / 2 }
            }
            r = channel(0)
            g = channel(1)
            b = channel(2)
            width = w
            height = h
        }

        func brightness(_ p: Int) -> Float { max(r[p], g[p], b[p]) }
    }

    /// Hues (degrees) of the saturated palette colours.
    static let paletteHues: [(ShapeColor, Double)] = ShapeColor.allCases.filter { $0 != .white }.map { c in
        let rgb = c.rgb
        return (c, hue(Double(rgb.red) / 255, Double(rgb.green) / 255, Double(rgb.blue) / 255))
    }

    static func hue(_ r: Double, _ g: Double, _ b: Double) -> Double {
        let mx = max(r, g, b), mn = min(r, g, b), d = mx - mn
        guard d > 0 else { return 0 }
        var h: Double
        if mx == r { h = (g - b) / d } else if mx == g { h = 2 + (b - r) / d } else { h = 4 + (r - g) / d }
        h *= 60
        return h < 0 ? h + 360 : h
    }

    static func classifyColor(_ r: Double, _ g: Double, _ b: Double) -> ShapeColor {
        let mx = max(r, g, b), mn = min(r, g, b)
        let saturation = mx > 0 ? (mx - mn) / mx : 0
        if saturation < 0.35 { return .white }
        let h = hue(r, g, b)
        return paletteHues.min { a, b in
            let da = min(abs(a.1 - h), 360 - abs(a.1 - h)), db = min(abs(b.1 - h), 360 - abs(b.1 - h))
            return da < db
        }!.0
    }

    static func detect(_ frame: Frame) -> [DetectedObject] {
        let (w, h) = (frame.width, frame.height)
        let u = Double(min(w, h))
        let smallTriangle = 0.5 * pow(ShapeSize.small.extent * u, 2)
        let minimumArea = max(3, Int(0.25 * smallTriangle))
        var label = [Int32](repeating: -1, count: w * h)
        var components: [(Int32, [Int])] = []
        var stack: [Int] = []
        var next: Int32 = 0
        for start in 0..<(w * h) where label[start] < 0 && frame.brightness(start) > foregroundThreshold {
            // Flood fill one 4-connected component.
            var pixels: [Int] = []
            label[start] = next
            stack.append(start)
            while let p = stack.popLast() {
                pixels.append(p)
                let x = p % w, y = p / w
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && nx < w && ny >= 0 && ny < h {
                    let q = ny * w + nx
                    if label[q] < 0 && frame.brightness(q) > foregroundThreshold {
                        label[q] = next
                        stack.append(q)
                    }
                }
            }
            next += 1
            if pixels.count >= minimumArea { components.append((next - 1, pixels)) }
        }
        // Measure once every component is labelled, so each one's soft surroundings exclude its neighbours.
        return components.map { measure($0.1, id: $0.0, labels: label, frame: frame, u: u) }
    }

    /// A component's soft mask: coverage `clamp(brightness / peak, 0, 1)` of the pixels of its bounding box grown by
    /// 2 pixels that belong to it or to no component, with `peak` the mean brightness of its brightest quarter.
    struct SoftMask {
        let x0: Int, y0: Int, width: Int, height: Int
        var coverage: [Double]
        var mass: Double { coverage.reduce(0, +) }

        var centroid: (Double, Double) {
            var sx = 0.0, sy = 0.0, m = 0.0
            for (i, c) in coverage.enumerated() {
                sx += c * (Double(x0 + i % width) + 0.5)
                sy += c * (Double(y0 + i / width) + 0.5)
                m += c
            }
            return (sx / m, sy / m)
        }
    }

    /// Soft intersection over union of the mask with each shape's template, the template having the mask's mass
    /// (extent √(mass / fill ratio)) and centroid (a triangle's centroid is e/6 below its box centre), drawn with the
    /// renderer's 4×4 supersampling and then blurred by each of `templateBlurs` (Gaussian σ in pixels, so that soft
    /// edges, as decoders make them, are compared with equally soft templates). Returns the shape of the best pair.
    static func bestTemplate(_ mask: SoftMask) -> ShapeKind {
        let (cx, cy) = mask.centroid
        let n = ShapesRenderer.samplesPerSide
        var best = ShapeKind.circle, bestIoU = -1.0
        for shape in ShapeKind.allCases {
            let e = (mask.mass / shape.fillRatio).squareRoot(), half = e / 2
            let ty = cy - (shape == .triangle ? e / 6 : 0)
            var template = [Double](repeating: 0, count: mask.coverage.count)
            for i in template.indices {
                let x = Double(mask.x0 + i % mask.width), y = Double(mask.y0 + i / mask.width)
                var inside = 0
                for j in 0..<n {
                    for k in 0..<n {
                        let px = x + (Double(k) + 0.5) / Double(n) - cx, py = y + (Double(j) + 0.5) / Double(n) - ty
                        if ShapesRenderer.contains(shape, px, py, half: half) { inside += 1 }
                    }
                }
                template[i] = Double(inside) / Double(n * n)
            }
            for sigma in templateBlurs {
                let t =
                    sigma > 0 ? gaussianBlur(template, width: mask.width, height: mask.height, sigma: sigma) : template
                var intersection = 0.0, union = 0.0
                for (c, v) in zip(mask.coverage, t) {
                    intersection += min(c, v)
                    union += max(c, v)
                }
                let iou = union > 0 ? intersection / union : 0
                if iou > bestIoU { bestIoU = iou; best = shape }
            }
        }
        return best
    }

    /// Blurs tried on the templates (Gaussian σ in pixels; 0 is the sharp template).
    public static let templateBlurs: [Double] = [0, 0.5, 0.8, 1.1]

    /// A separable Gaussian blur (radius ⌈3σ⌉, edges clamped).
    static func gaussianBlur(_ values: [Double], width: Int, height: Int, sigma: Double) -> [Double] {
        let r = Int((3 * sigma).rounded(.up))
        var kernel = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var rows = [Double](repeating: 0, count: values.count), out = rows
        for y in 0..<height {
            for x in 0..<width {
                var s = 0.0
                for k in -r...r { s += kernel[k + r] * values[y * width + min(width - 1, max(0, x + k))] }
                rows[y * width + x] = s
            }
        }
        for y in 0..<height {
            for x in 0..<width {
                var s = 0.0
                for k in -r...r { s += kernel[k + r] * rows[min(height - 1, max(0, y + k)) * width + x] }
                out[y * width + x] = s
            }
        }
        return out
    }

    static func measure(_ pixels: [Int], id: Int32, labels: [Int32], frame: Frame, u: Double) -> DetectedObject {
        let (w, h) = (frame.width, frame.height)
        var minX = Int.max, maxX = Int.min, minY = Int.max, maxY = Int.min
        var core = (0.0, 0.0, 0.0, 0), all = (0.0, 0.0, 0.0)
        for p in pixels {
            let x = p % w, y = p / w
            minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
            let (r, g, b) = (Double(frame.r[p]), Double(frame.g[p]), Double(frame.b[p]))
            all = (all.0 + r, all.1 + g, all.2 + b)
            if frame.brightness(p) > coreThreshold { core = (core.0 + r, core.1 + g, core.2 + b, core.3 + 1) }
        }
        let n = Double(pixels.count)
        let colour =
            core.3 > 0
            ? classifyColor(core.0 / Double(core.3), core.1 / Double(core.3), core.2 / Double(core.3))
            : classifyColor(all.0 / n, all.1 / n, all.2 / n)
        let brightest = pixels.map { Double(frame.brightness($0)) }.sorted(by: >)
        let quarter = brightest.prefix(max(1, brightest.count / 4))
        let peak = quarter.reduce(0, +) / Double(quarter.count)
        let x0 = max(0, minX - 2), x1 = min(w - 1, maxX + 2), y0 = max(0, minY - 2), y1 = min(h - 1, maxY + 2)
        var mask = SoftMask(x0: x0, y0: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, coverage: [])
        for y in y0...y1 {
            for x in x0...x1 {
                let p = y * w + x
                let mine = labels[p] == id || labels[p] < 0
                mask.coverage.append(mine ? min(1, max(0, Double(frame.brightness(p)) / peak)) : 0)
            }
        }
        let shape = bestTemplate(mask)
        let extent = (mask.mass / shape.fillRatio).squareRoot() / u
        let size: ShapeSize = extent < (ShapeSize.small.extent * ShapeSize.large.extent).squareRoot() ? .small : .large
        let center = mask.centroid
        return DetectedObject(
            color: colour, shape: shape, size: size, center: [center.0, center.1], area: pixels.count, extent: extent)
    }
}
