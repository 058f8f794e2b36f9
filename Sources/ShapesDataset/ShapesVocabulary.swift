/// The words of the Shapes world: shapes, colours, sizes, motions and relative positions.
///
/// Raw values are the caption words and the JSON values of the attribute records.

/// An object's outline.
public enum ShapeKind: String, Codable, CaseIterable, Sendable {
    /// A disc of diameter `extent`.
    case circle
    /// An axis-aligned square of side `extent`.
    case square
    /// An upward-pointing isosceles triangle, base and height `extent` (half its bounding box is filled).
    case triangle

    /// The plural caption word.
    public var plural: String { rawValue + "s" }

    /// The fraction of the bounding box the shape fills: 1, π/4, 1/2.
    public var fillRatio: Double {
        switch self {
        case .square: return 1
        case .circle: return Double.pi / 4
        case .triangle: return 0.5
        }
    }
}

/// An object's colour. Fully saturated hues (so the detector can tell them apart by hue) plus white.
///
/// | colour | RGB | hue |
/// |---|---|---|
/// | red | 255, 0, 0 | 0° |
/// | orange | 255, 128, 0 | 30° |
/// | yellow | 255, 255, 0 | 60° |
/// | green | 0, 210, 0 | 120° |
/// | cyan | 0, 230, 230 | 180° |
/// | blue | 0, 70, 255 | 224° |
/// | purple | 170, 0, 255 | 280° |
/// | white | 255, 255, 255 | (saturation 0) |
///
/// Green and cyan are slightly darker than full intensity and blue slightly lighter so the hues look evenly bright;
/// every colour's brightest channel is at least 210, far above the black background.
public enum ShapeColor: String, Codable, CaseIterable, Sendable {
    /// 255, 0, 0.
    case red
    /// 255, 128, 0.
    case orange
    /// 255, 255, 0.
    case yellow
    /// 0, 210, 0.
    case green
    /// 0, 230, 230.
    case cyan
    /// 0, 70, 255.
    case blue
    /// 170, 0, 255.
    case purple
    /// 255, 255, 255.
    case white

    /// The colour's 8-bit RGB value.
    public var rgb: (red: UInt8, green: UInt8, blue: UInt8) {
        switch self {
        case .red: return (255, 0, 0)
        case .orange: return (255, 128, 0)
        case .yellow: return (255, 255, 0)
        case .green: return (0, 210, 0)
        case .cyan: return (0, 230, 230)
        case .blue: return (0, 70, 255)
        case .purple: return (170, 0, 255)
        case .white: return (255, 255, 255)
        }
    }
}

/// An object's size: its extent (bounding-box side) as a fraction of the frame's shorter side, so a size means the
/// same at every resolution.
public enum ShapeSize: String, Codable, CaseIterable, Sendable {
    /// Extent 0.15 of the shorter side (9.6 pixels at 64×64).
    case small
    /// Extent 0.25 of the shorter side (16 pixels at 64×64): 2.8× the area of a small one of the same shape.
    case large

    /// The extent as a fraction of the frame's shorter side.
    public var extent: Double { self == .small ? 0.15 : 0.25 }
}

/// How every object of a scene moves: not at all, or all together in one direction at a steady speed.
public enum Motion: String, Codable, CaseIterable, Sendable {
    /// Not moving.
    case `static`
    /// Moving towards the left edge.
    case left
    /// Moving towards the right edge.
    case right
    /// Moving towards the top edge.
    case up
    /// Moving towards the bottom edge.
    case down

    /// The direction as a unit step in image coordinates (x right, y down).
    public var direction: (x: Double, y: Double) {
        switch self {
        case .static: return (0, 0)
        case .left: return (-1, 0)
        case .right: return (1, 0)
        case .up: return (0, -1)
        case .down: return (0, 1)
        }
    }

    /// Distance travelled over the whole clip, first frame to last, as a fraction of the frame's extent along the
    /// motion (0.3: 19 pixels at 64 pixels, whatever the frame count, so the speed per frame is 0.3 / (T − 1)).
    public static let travel = 0.3
}

/// Where the first object of a pair sits relative to the second.
public enum Relation: String, Codable, CaseIterable, Sendable {
    /// "to the left of": the first object's centre is left of the second's, further apart across than along.
    case leftOf = "left of"
    /// "to the right of".
    case rightOf = "right of"
    /// "above": the first object's centre is higher.
    case above
    /// "below".
    case below

    /// The caption words: "to the left of", "to the right of", "above", "below".
    public var phrase: String {
        switch self {
        case .leftOf: return "to the left of"
        case .rightOf: return "to the right of"
        case .above: return "above"
        case .below: return "below"
        }
    }

    /// The relation with the objects' sides exchanged: "left of" ↔ "right of", "above" ↔ "below".
    public var opposite: Relation {
        switch self {
        case .leftOf: return .rightOf
        case .rightOf: return .leftOf
        case .above: return .below
        case .below: return .above
        }
    }
}
