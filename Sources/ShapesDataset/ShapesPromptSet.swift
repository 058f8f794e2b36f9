/// Which prompts a consumer wants: the training ones, the held-out evaluation ones, or all.
public enum PromptSplit: String, Codable, CaseIterable, Sendable {
    /// Captions not held out: what the generator draws for training by default.
    case training
    /// Held-out captions, for evaluation.
    case evaluation
    /// Every caption.
    case all

    /// Whether `attributes` belongs to this split.
    public func contains(_ attributes: SceneAttributes) -> Bool {
        switch self {
        case .all: return true
        case .training: return !ShapesPromptSet.isHeldOut(attributes)
        case .evaluation: return ShapesPromptSet.isHeldOut(attributes)
        }
    }
}

/// The space of Shapes captions without rendering: enumeration, random draws, and the held-out split.
///
/// The split is a pure function of the scene: a record is held out when the FNV-1a 64-bit hash of its *canonical*
/// caption, modulo 1000, is below `heldOutPerMille` (100, so 10 %). The canonical caption writes a pair as "left of"
/// or "above" (swapping "B to the right of A" into "A to the left of B"), so the two captions of one scene always fall
/// on the same side and training never sees an evaluation scene in other words. FNV-1a, not Swift's `Hasher`, because
/// the latter is seeded per process.
public enum ShapesPromptSet {
    /// Held-out share in thousandths.
    public static let heldOutPerMille: UInt64 = 100

    /// Probability of each scene kind in random draws: single objects, groups of 2–3, and pairs.
    public static let kindWeights = (single: 0.35, group: 0.3, pair: 0.35)

    /// Whether the scene is in the held-out (evaluation) split.
    public static func isHeldOut(_ attributes: SceneAttributes) -> Bool {
        fnv1a(canonical(attributes).caption) % 1000 < heldOutPerMille
    }

    /// A pair with relation "right of" or "below" rewritten as the same scene with the objects swapped.
    static func canonical(_ a: SceneAttributes) -> SceneAttributes {
        guard let relation = a.relation, relation == .rightOf || relation == .below else { return a }
        return SceneAttributes(
            objects: [a.objects[1], a.objects[0]], relation: relation.opposite, motion: a.motion)
    }

    /// FNV-1a, 64-bit, over the UTF-8 bytes.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// Every object description (2 sizes × 8 colours × 3 shapes = 48).
    public static var allObjects: [ObjectAttributes] {
        ShapeSize.allCases.flatMap { size in
            ShapeColor.allCases.flatMap { color in
                ShapeKind.allCases.map { ObjectAttributes(shape: $0, color: color, size: size) }
            }
        }
    }

    /// Every scene of the grammar in a fixed order, for videos (all motions) or images (static only), in `split`.
    ///
    /// Sizes: 48 singles, 96 groups and 8064 pairs per motion.
    public static func all(video: Bool, split: PromptSplit = .all) -> [SceneAttributes] {
        let motions: [Motion] = video ? Motion.allCases : [.static]
        var scenes: [SceneAttributes] = []
        for motion in motions {
            for o in allObjects {
                scenes.append(SceneAttributes(objects: [o], motion: motion))
                for n in 2...3 {
                    scenes.append(SceneAttributes(objects: Array(repeating: o, count: n), motion: motion))
                }
            }
            for a in allObjects {
                for b in allObjects where b.color != a.color {
                    for r in Relation.allCases {
                        scenes.append(SceneAttributes(objects: [a, b], relation: r, motion: motion))
                    }
                }
            }
        }
        return scenes.filter(split.contains)
    }

    /// One random scene: kind by `kindWeights`; uniform sizes, colours and shapes; for videos a uniform motion
    /// (static or one of four directions); images are static.
    public static func random(using rng: inout ShapesRandom, video: Bool) -> SceneAttributes {
        let motion: Motion = video ? rng.pick(Motion.allCases) : .static
        let kind = rng.uniform()
        func object() -> ObjectAttributes {
            ObjectAttributes(
                shape: rng.pick(ShapeKind.allCases), color: rng.pick(ShapeColor.allCases),
                size: rng.pick(ShapeSize.allCases))
        }
        if kind < kindWeights.single { return SceneAttributes(objects: [object()], motion: motion) }
        if kind < kindWeights.single + kindWeights.group {
            let o = object()
            return SceneAttributes(objects: Array(repeating: o, count: 2 + rng.integer(below: 2)), motion: motion)
        }
        let a = object()
        var b = object()
        while b.color == a.color { b.color = rng.pick(ShapeColor.allCases) }
        return SceneAttributes(objects: [a, b], relation: rng.pick(Relation.allCases), motion: motion)
    }

    /// One random scene in `split` (redrawn until it belongs).
    public static func random(using rng: inout ShapesRandom, video: Bool, split: PromptSplit) -> SceneAttributes {
        while true {
            let scene = random(using: &rng, video: video)
            if split.contains(scene) { return scene }
        }
    }

    /// `count` distinct random scenes of `split` from `seed` (an evaluation prompt set), `videoFraction` of them
    /// videos (the first `round(count · videoFraction)`), the rest images. Fewer come back only when the split has
    /// fewer distinct captions than asked for (after 100 draws per prompt).
    public static func sample(count: Int, seed: UInt64, videoFraction: Double = 1, split: PromptSplit = .evaluation)
        -> [(attributes: SceneAttributes, isVideo: Bool)]
    {
        var rng = ShapesRandom(seed: seed, stream: 0x5052_4F4D_5054)  // "PROMPT"
        let videos = Int((Double(count) * min(max(videoFraction, 0), 1)).rounded())
        var seen = Set<String>()
        var out: [(SceneAttributes, Bool)] = []
        var attempts = 0
        while out.count < count && attempts < 100 * count {
            attempts += 1
            let isVideo = out.count < videos
            let scene = random(using: &rng, video: isVideo, split: split)
            if seen.insert(scene.caption).inserted { out.append((scene, isVideo)) }
        }
        return out
    }
}
