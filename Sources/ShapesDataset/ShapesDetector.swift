import Foundation
import TensorCore

/// One object found in a frame.
public struct DetectedObject: Codable, Hashable, Sendable {
    /// Colour by hue (white by low saturation).
    public var color: ShapeColor
    /// Shape by fill ratio and the top-to-bottom width profile.
    public var shape: ShapeKind
    /// Size class by bounding-box extent.
    public var size: ShapeSize
    /// Centroid `[x, y]` in pixels.
    public var center: [Double]
    /// Pixels in the component.
    public var area: Int
    /// Bounding-box extent as a fraction of the frame's shorter side.
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
/// - **shape**: a triangle's rows widen from top to bottom, so the mean row width of the top third below half that of
///   the bottom third means triangle; otherwise a square fills its bounding box's corners and a disc does not (a
///   corner pixel's centre is √2 radii from the disc's centre), so three or four of the four corner pixels in the
///   component, or a fill ratio of the box of at least 0.93 (square 1, disc π/4 ≈ 0.79) for squares whose corners
///   are rounded off, means square; anything else is a circle;
/// - **size**: the mean bounding-box side over the frame's shorter side, small below √(0.15·0.25) ≈ 0.194 (the
///   geometric mean of the two sizes);
/// - **position**: the centroid.
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
        precondition(video.rank == 4 && video.shape[0] == 3, "ShapesDetector: expected (3, T, H, W), got \(video.shape)")
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
            return (objects.reduce(0) { $0 + $1.center[0] * Double($1.area) } / area,
                    objects.reduce(0) { $0 + $1.center[1] * Double($1.area) } / area)
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
            precondition(video.rank == 4 && video.shape[0] == 3, "ShapesDetector: expected (3, T, H, W), got \(video.shape)")
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
        var objects: [DetectedObject] = []
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
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where nx >= 0 && nx < w && ny >= 0 && ny < h {
                    let q = ny * w + nx
                    if label[q] < 0 && frame.brightness(q) > foregroundThreshold {
                        label[q] = next
                        stack.append(q)
                    }
                }
            }
            next += 1
            guard pixels.count >= minimumArea else { continue }
            objects.append(measure(pixels, frame: frame, u: u))
        }
        return objects
    }

    static func measure(_ pixels: [Int], frame: Frame, u: Double) -> DetectedObject {
        let w = frame.width
        var minX = Int.max, maxX = Int.min, minY = Int.max, maxY = Int.min
        var sx = 0.0, sy = 0.0
        var core = (0.0, 0.0, 0.0, 0), all = (0.0, 0.0, 0.0)
        for p in pixels {
            let x = p % w, y = p / w
            minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
            sx += Double(x) + 0.5
            sy += Double(y) + 0.5
            let (r, g, b) = (Double(frame.r[p]), Double(frame.g[p]), Double(frame.b[p]))
            all = (all.0 + r, all.1 + g, all.2 + b)
            if frame.brightness(p) > coreThreshold { core = (core.0 + r, core.1 + g, core.2 + b, core.3 + 1) }
        }
        let n = Double(pixels.count)
        let colour =
            core.3 > 0
            ? classifyColor(core.0 / Double(core.3), core.1 / Double(core.3), core.2 / Double(core.3))
            : classifyColor(all.0 / n, all.1 / n, all.2 / n)
        let bw = maxX - minX + 1, bh = maxY - minY + 1
        // Row widths for the top-to-bottom profile.
        var rowWidth = [Int](repeating: 0, count: bh)
        for p in pixels { rowWidth[p / w - minY] += 1 }
        let third = max(1, bh / 3)
        let top = Double(rowWidth[0..<third].reduce(0, +)) / Double(third)
        let bottom = Double(rowWidth[(bh - third)...].reduce(0, +)) / Double(third)
        let fill = n / Double(bw * bh)
        let shape: ShapeKind
        let members = Set(pixels)
        let corners = [minY * w + minX, minY * w + maxX, maxY * w + minX, maxY * w + maxX].filter(members.contains).count
        if bh >= 3 && top < 0.5 * bottom {
            shape = .triangle
        } else {
            shape = corners >= 3 || fill >= 0.93 ? .square : .circle
        }
        let extent = Double(bw + bh) / 2 / u
        let size: ShapeSize = extent < (ShapeSize.small.extent * ShapeSize.large.extent).squareRoot() ? .small : .large
        return DetectedObject(
            color: colour, shape: shape, size: size, center: [sx / n, sy / n], area: pixels.count, extent: extent)
    }
}
