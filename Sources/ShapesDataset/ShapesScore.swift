import Foundation
import TensorCore

/// The verdict on one generated sample against its prompt's record: which categories are right.
///
/// Static attributes (colour, shape, size, count, position) are read on the middle frame (`T / 2`): for videos from a
/// causal VAE the first frame is coded alone and is the least typical one. Expected objects are matched one-to-one to
/// detections by the assignment that agrees most (colour counts 4, shape 2, size 1); a category is right when every
/// expected object's match agrees in it (a missing match is wrong). Count is right when the number of detections
/// equals the number of objects. Position applies to pairs only: the first object's centroid must lie on the named
/// side of the second's, along the dominant axis of their offset. Motion applies to videos only (the detected
/// direction, or static, must equal the prompt's).
public struct ShapesJudgement: Codable, Hashable, Sendable {
    /// Colours of all objects right.
    public var color: Bool
    /// Shapes of all objects right.
    public var shape: Bool
    /// Sizes of all objects right.
    public var size: Bool
    /// Number of detected objects right.
    public var count: Bool
    /// Relative position right (pairs only; nil otherwise).
    public var position: Bool?
    /// Motion right (videos only; nil for images).
    public var motion: Bool?
    /// Temporal flicker of the sample (see `ShapesScore.flicker(_:)`); 0 for an image.
    public var flicker: Double
    /// Per expected object, in the prompt's order: its size and shape, the shape of the detection matched to it, and
    /// whether that is right (false when it has no match). A diagnostic beside `shape`, which needs every object right.
    public var objectShapes: [ObjectShapeVerdict]

    /// Whether every applicable category is right.
    public var allCorrect: Bool { color && shape && size && count && position != false && motion != false }

    /// Judges `video` `(3, T, H, W)` in [-1, 1] against `attributes`.
    public init(video: Tensor, attributes: SceneAttributes) {
        precondition(
            video.rank == 4 && video.shape[0] == 3, "ShapesJudgement: expected (3, T, H, W), got \(video.shape)")
        let (t, h, w) = (video.shape[1], video.shape[2], video.shape[3])
        let detections = ShapesDetector.detectAll(video)
        let found = detections[t / 2]
        let expected = attributes.objects
        let match = ShapesJudgement.assign(expected, found)
        func all(_ agree: (ObjectAttributes, DetectedObject) -> Bool) -> Bool {
            zip(expected, match).allSatisfy { e, m in m.map { agree(e, found[$0]) } ?? false }
        }
        color = all { $0.color == $1.color }
        shape = all { $0.shape == $1.shape }
        objectShapes = zip(expected, match).map { e, m in
            ObjectShapeVerdict(size: e.size, shape: e.shape, drawn: m.map { found[$0].shape })
        }
        size = all { $0.size == $1.size }
        count = found.count == expected.count
        if let relation = attributes.relation {
            if let s = match[0], let r = match[1] {
                let dx = found[s].center[0] - found[r].center[0], dy = found[s].center[1] - found[r].center[1]
                switch relation {
                case .leftOf: position = dx < 0 && abs(dx) > abs(dy)
                case .rightOf: position = dx > 0 && abs(dx) > abs(dy)
                case .above: position = dy < 0 && abs(dy) > abs(dx)
                case .below: position = dy > 0 && abs(dy) > abs(dx)
                }
            } else {
                position = false
            }
        } else {
            position = nil
        }
        motion = t > 1 ? ShapesDetector.motion(detections, width: w, height: h) == attributes.motion : nil
        flicker = ShapesScore.flicker(video)
    }

    /// The best one-to-one assignment of expected objects to detections (index or nil per expected object),
    /// by exhaustive search over the (at most 3) objects and the 8 largest detections.
    static func assign(_ expected: [ObjectAttributes], _ found: [DetectedObject]) -> [Int?] {
        let candidates = Array(found.indices.sorted { found[$0].area > found[$1].area }.prefix(8))
        var best: [Int?] = Array(repeating: nil, count: expected.count)
        var bestScore = -1
        func search(_ i: Int, _ used: Set<Int>, _ current: [Int?], _ score: Int) {
            if i == expected.count {
                if score > bestScore { bestScore = score; best = current }
                return
            }
            var options: [Int?] = candidates.filter { !used.contains($0) }.map { $0 }
            if options.isEmpty { options = [nil] }
            for option in options {
                var s = score
                if let d = option {
                    let e = expected[i], f = found[d]
                    s += (e.color == f.color ? 4 : 0) + (e.shape == f.shape ? 2 : 0) + (e.size == f.size ? 1 : 0)
                }
                search(i + 1, option.map { used.union([$0]) } ?? used, current + [option], s)
            }
        }
        search(0, [], [], 0)
        return best
    }
}

/// One expected object's shape verdict (`ShapesJudgement.objectShapes`).
public struct ObjectShapeVerdict: Codable, Hashable, Sendable {
    /// The object's size in the prompt.
    public var size: ShapeSize
    /// The object's shape in the prompt.
    public var shape: ShapeKind
    /// The shape of the detection matched to it, nil when none was.
    public var drawn: ShapeKind?
    /// Whether the matched detection has the prompt's shape.
    public var right: Bool

    /// A verdict: right when `drawn` is `shape`.
    public init(size: ShapeSize, shape: ShapeKind, drawn: ShapeKind?) {
        self.size = size
        self.shape = shape
        self.drawn = drawn
        right = drawn == shape
    }
}

/// Accuracy of generated samples per attribute category, in the manner of GenEval, plus temporal flicker.
///
/// Each category's accuracy is the share of judged samples, among those where it applies, that got it right.
/// `overall` is the mean of the five headline categories (colour, shape, count, position, motion) that had at least
/// one applicable sample, as GenEval averages its task categories; size is reported beside them but not in `overall`.
/// `promptAccuracy` is the stricter share of samples with every applicable category (size included) right. Beside them,
/// `shapeBySize` counts objects rather than samples: the share of small and of large objects drawn with the right
/// shape, which tells a resolution limit (small objects wrong, large ones right) from a general one; the same per
/// size and prompted shape (`shapeCategory(_:_:)`, e.g. "shape.small.circle") tells which shapes are confused.
public struct ShapesScore: Codable, Sendable {
    /// Correct and applicable counts per category.
    public private(set) var correct: [String: Int] = [:], applicable: [String: Int] = [:]
    /// Samples judged, and those entirely right.
    public private(set) var samples = 0, allCorrect = 0
    /// Sum of per-video flicker over videos judged.
    public private(set) var flickerSum = 0.0, videos = 0

    /// The categories in report order; the first five make `overall`.
    public static let categories = ["color", "shape", "count", "position", "motion", "size"]
    /// The per-object shape categories, one per size ("shape.small", "shape.large"); not in `overall`.
    public static let shapeBySize = ShapeSize.allCases.map { shapeCategory($0) }

    /// The per-object shape category of objects of `size` ("shape.small"), or of those of `size` prompted as `kind`
    /// ("shape.small.circle").
    public static func shapeCategory(_ size: ShapeSize, _ kind: ShapeKind? = nil) -> String {
        "shape.\(size.rawValue)" + (kind.map { ".\($0.rawValue)" } ?? "")
    }

    /// An empty score.
    public init() {}

    /// Adds one judged sample.
    public mutating func add(_ j: ShapesJudgement) {
        let verdicts: [(String, Bool?)] = [
            ("color", j.color), ("shape", j.shape), ("count", j.count), ("position", j.position),
            ("motion", j.motion), ("size", j.size),
        ]
        for (name, verdict) in verdicts {
            guard let verdict else { continue }
            applicable[name, default: 0] += 1
            if verdict { correct[name, default: 0] += 1 }
        }
        for object in j.objectShapes {
            for name in [ShapesScore.shapeCategory(object.size), ShapesScore.shapeCategory(object.size, object.shape)] {
                applicable[name, default: 0] += 1
                if object.right { correct[name, default: 0] += 1 }
            }
        }
        samples += 1
        if j.allCorrect { allCorrect += 1 }
        if j.motion != nil {
            videos += 1
            flickerSum += j.flicker
        }
    }

    /// Accuracy of a category in [0, 1], nil when it never applied.
    public func accuracy(_ category: String) -> Double? {
        guard let n = applicable[category], n > 0 else { return nil }
        return Double(correct[category, default: 0]) / Double(n)
    }

    /// Mean accuracy of colour, shape, count, position and motion (those that applied).
    public var overall: Double {
        let values = ShapesScore.categories.prefix(5).compactMap(accuracy)
        return values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// Share of samples with everything right.
    public var promptAccuracy: Double { samples == 0 ? 0 : Double(allCorrect) / Double(samples) }

    /// Mean flicker over the videos judged (0 when none).
    public var meanFlicker: Double { videos == 0 ? 0 : flickerSum / Double(videos) }

    /// Temporal flicker of a video `(3, T, H, W)` in [-1, 1]: the mean absolute change between consecutive frames,
    /// on a 0…1 pixel scale and over the three channels, of the background pixels of both frames: those at least
    /// 2 pixels (Chebyshev distance) from any pixel whose brightest channel exceeds 0.2. The Shapes background is
    /// black and still and the margin keeps out the anti-aliased edges of moving objects, so a faithful video scores
    /// exactly 0 whatever its objects do; grain or shimmer that comes and goes raises it. 0 for a single frame or
    /// when no pixel is background.
    public static func flicker(_ video: Tensor) -> Double {
        let (t, h, w) = (video.shape[1], video.shape[2], video.shape[3])
        guard t > 1 else { return 0 }
        let v = video.scalars, plane = h * w
        func value(_ c: Int, _ f: Int, _ p: Int) -> Double { Double(v[(c * t + f) * plane + p] + 1) / 2 }
        /// Pixels of frame f at least 2 pixels away from anything brighter than 0.2.
        func background(_ f: Int) -> [Bool] {
            var near = [Bool](repeating: false, count: plane)
            for y in 0..<h {
                for x in 0..<w where (0..<3).contains(where: { value($0, f, y * w + x) > 0.2 }) {
                    for ny in max(0, y - 2)...min(h - 1, y + 2) {
                        for nx in max(0, x - 2)...min(w - 1, x + 2) { near[ny * w + nx] = true }
                    }
                }
            }
            return near.map { !$0 }
        }
        var sum = 0.0, n = 0
        var previous = background(0)
        for f in 1..<t {
            let current = background(f)
            for p in 0..<plane where current[p] && previous[p] {
                for c in 0..<3 { sum += abs(value(c, f, p) - value(c, f - 1, p)) }
                n += 3
            }
            previous = current
        }
        return n == 0 ? 0 : sum / Double(n)
    }

    /// A one-line summary: every category, overall, prompt accuracy, flicker and the per-object shape accuracy by
    /// size, and within a size by prompted shape.
    public var summary: String {
        let parts = ShapesScore.categories.map { c in
            accuracy(c).map { "\(c) \(String(format: "%.3f", $0))" } ?? "\(c) n/a"
        }
        let bySize = ShapeSize.allCases.compactMap { size in
            let c = ShapesScore.shapeCategory(size)
            let byKind = ShapeKind.allCases.compactMap { kind in
                accuracy(ShapesScore.shapeCategory(size, kind)).map { "\(kind.rawValue) \(String(format: "%.3f", $0))" }
            }
            return accuracy(c).map {
                "\(size.rawValue) \(String(format: "%.3f", $0)) of \(applicable[c] ?? 0) (\(byKind.joined(separator: ", ")))"
            }
        }
        return parts.joined(separator: ", ")
            + String(
                format: "; overall %.3f; all-correct %.3f; flicker %.4f (%d samples)", overall, promptAccuracy,
                meanFlicker, samples)
            + (bySize.isEmpty ? "" : "; objects' shape: " + bySize.joined(separator: ", "))
    }
}
