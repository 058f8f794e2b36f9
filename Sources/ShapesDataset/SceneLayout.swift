/// Where a scene's objects are: centres on the first frame and one displacement shared by all, in pixels.
///
/// Placement is constructive, so every record of the grammar fits at every frame size (checked by a test): with `u`
/// the shorter side, objects keep `gap = 0.04·u` between bounding boxes and `margin = 0.02·u` from the border along
/// the whole motion path. Groups are laid out along one axis (across the motion when they move, so three large
/// objects still fit), pairs along the relation's axis with the first object on the named side; the remaining room is
/// spent on random spacing, a random offset across the axis (for pairs at most 0.4 of the separation, so the relation
/// stays unambiguous), and a random position of the whole group.
public struct SceneLayout: Codable, Hashable, Sendable {
    /// Object centres on the first frame, `[x, y]` in pixels (x right, y down), in `SceneAttributes.objects` order.
    public var centers: [[Double]]
    /// Object extents (bounding-box sides) in pixels.
    public var extents: [Double]
    /// Displacement from the first frame to the last, `[dx, dy]` in pixels (zero when static).
    public var displacement: [Double]

    /// Border margin and minimum gap between objects, as fractions of the shorter side.
    public static let margin = 0.02, gap = 0.04

    /// A random layout of `attributes` in a `width`×`height` frame.
    public init(attributes: SceneAttributes, width: Int, height: Int, using rng: inout ShapesRandom) {
        let w = Double(width), h = Double(height), u = min(w, h)
        let margin = SceneLayout.margin * u, gap = SceneLayout.gap * u
        let extents = attributes.objects.map { $0.size.extent * u }
        let dir = attributes.motion.direction
        let travel = (dir.x * Motion.travel * w, dir.y * Motion.travel * h)
        // Room along x and y for the group's bounding box: frame minus margins minus the motion path.
        let room = (w - 2 * margin - abs(travel.0), h - 2 * margin - abs(travel.1))

        // Offsets of the centres relative to the first object, along (a) the layout axis and (b) across it.
        var along = [0.0], across = [0.0]
        let horizontal: Bool
        if let relation = attributes.relation {
            horizontal = relation == .leftOf || relation == .rightOf
            let roomAlong = horizontal ? room.0 : room.1, roomAcross = horizontal ? room.1 : room.0
            let minimum = extents[0] / 2 + gap + extents[1] / 2
            let slack = max(0, roomAlong - (extents[0] / 2 + minimum + extents[1] / 2))
            let separation = minimum + rng.uniform() * slack
            let sign = (relation == .leftOf || relation == .above) ? 1.0 : -1.0
            along.append(sign * separation)
            let acrossBound = min(0.4 * separation, max(0, roomAcross - extents.max()!))
            across.append(rng.uniform(-1, 1) * acrossBound)
        } else if extents.count > 1 {
            // Across the motion when moving; either axis when static.
            horizontal = attributes.motion == .static ? rng.uniform() < 0.5 : dir.x == 0
            let e = extents[0], n = Double(extents.count)
            let roomAlong = horizontal ? room.0 : room.1, roomAcross = horizontal ? room.1 : room.0
            let slack = max(0, roomAlong - (n * e + (n - 1) * gap))
            let spend = rng.uniform() * slack
            let weights = (1..<extents.count).map { _ in rng.uniform() + 0.05 }
            let total = weights.reduce(0, +)
            let jitter = rng.uniform() * max(0, roomAcross - e)
            for k in 1..<extents.count {
                along.append(along[k - 1] + e + gap + spend * weights[k - 1] / total)
                across.append(0)
            }
            for k in across.indices { across[k] = rng.uniform() * jitter }
        } else {
            horizontal = true
        }
        let offsets = zip(along, across).map { horizontal ? ($0, $1) : ($1, $0) }
        // Place the group's bounding box uniformly where the whole path stays inside the margins.
        let minX = zip(offsets, extents).map { $0.0 - $1 / 2 }.min()!,
            maxX = zip(offsets, extents).map { $0.0 + $1 / 2 }.max()!
        let minY = zip(offsets, extents).map { $0.1 - $1 / 2 }.min()!,
            maxY = zip(offsets, extents).map { $0.1 + $1 / 2 }.max()!
        let lowX = margin - minX + max(0, -travel.0), highX = w - margin - maxX - max(0, travel.0)
        let lowY = margin - minY + max(0, -travel.1), highY = h - margin - maxY - max(0, travel.1)
        let originX = rng.uniform(lowX, max(lowX, highX)), originY = rng.uniform(lowY, max(lowY, highY))
        centers = offsets.map { [originX + $0.0, originY + $0.1] }
        self.extents = extents
        displacement = [travel.0, travel.1]
    }

    /// The centre of object `i` on frame `t` of `frames` (objects move at a steady speed from the first frame to
    /// the last).
    public func center(_ i: Int, frame t: Int, of frames: Int) -> (x: Double, y: Double) {
        let f = frames > 1 ? Double(t) / Double(frames - 1) : 0
        return (centers[i][0] + f * displacement[0], centers[i][1] + f * displacement[1])
    }
}
