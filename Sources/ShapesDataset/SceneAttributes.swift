import Foundation

/// One object of a scene as a caption names it.
public struct ObjectAttributes: Codable, Hashable, Sendable {
    /// Outline.
    public var shape: ShapeKind
    /// Colour.
    public var color: ShapeColor
    /// Size class.
    public var size: ShapeSize

    /// An object description.
    public init(shape: ShapeKind, color: ShapeColor, size: ShapeSize) {
        self.shape = shape
        self.color = color
        self.size = size
    }

    /// "large red circle".
    var words: String { "\(size.rawValue) \(color.rawValue) \(shape.rawValue)" }
}

/// Everything a Shapes caption says, and so everything the evaluation checks: the ground-truth record of a sample.
///
/// Three kinds of scene, each with its caption grammar (the size is always named so that every attribute can be read
/// back from the caption; `init(caption:)` does exactly that):
///
///     single := "a " OBJECT MOTION?                          "a large red circle moving right"
///     group  := COUNT " " SIZE " " COLOUR " " SHAPE "s" MOTION?   "two small blue squares"
///     pair   := "a " OBJECT " " RELATION " a " OBJECT (", both" MOTION)?
///                                         "a small yellow triangle to the left of a large green circle"
///     OBJECT := SIZE " " COLOUR " " SHAPE
///     MOTION := " moving " ("left" | "right" | "up" | "down")       (absent: static)
///     COUNT := "two" | "three";   RELATION := "to the left of" | "to the right of" | "above" | "below"
///
/// A group's objects are identical (same shape, colour and size); a pair's two objects have different colours (so
/// which is which is never ambiguous); every object of a scene moves the same way. JSON form (synthesised
/// `Codable`): `{"objects":[{"shape":"circle","color":"red","size":"large"}],"motion":"right"}`, plus `"relation"` for
/// pairs.
public struct SceneAttributes: Codable, Hashable, Sendable {
    /// The objects: one (single), two or three identical ones (group), or two (pair: subject first, then reference).
    public var objects: [ObjectAttributes]
    /// For a pair: where `objects[0]` is relative to `objects[1]`.
    public var relation: Relation?
    /// How all objects move (always `.static` in images).
    public var motion: Motion

    /// A scene record; call `validate()` for records from outside.
    public init(objects: [ObjectAttributes], relation: Relation? = nil, motion: Motion = .static) {
        self.objects = objects
        self.relation = relation
        self.motion = motion
    }

    /// The number of objects.
    public var count: Int { objects.count }

    /// Whether this is a pair scene (a relation between two different objects).
    public var isPair: Bool { relation != nil }

    /// Throws `ShapesError.invalidAttributes` naming the broken rule.
    public func validate() throws {
        func fail(_ reason: String) -> ShapesError { .invalidAttributes(reason) }
        guard (1...3).contains(objects.count) else { throw fail("objects: \(objects.count) objects, expected 1 to 3") }
        if relation != nil {
            guard objects.count == 2 else { throw fail("relation: a pair has 2 objects, not \(objects.count)") }
            guard objects[0].color != objects[1].color else { throw fail("objects: a pair needs two colours") }
        } else if objects.count > 1 {
            guard objects.allSatisfy({ $0 == objects[0] }) else {
                throw fail("objects: a group without a relation must have identical objects")
            }
        }
    }

    /// The caption, from the grammar above.
    public var caption: String {
        let moving = motion == .static ? "" : " moving \(motion.rawValue)"
        if let relation {
            let both = motion == .static ? "" : ", both\(moving)"
            return "a \(objects[0].words) \(relation.phrase) a \(objects[1].words)\(both)"
        }
        if objects.count == 1 { return "a \(objects[0].words)\(moving)" }
        let o = objects[0]
        let number = objects.count == 2 ? "two" : "three"
        return "\(number) \(o.size.rawValue) \(o.color.rawValue) \(o.shape.plural)\(moving)"
    }

    /// Reads a caption of the grammar back into its record (the inverse of `caption`).
    ///
    /// Throws `ShapesError.unparsableCaption` for text outside the grammar.
    public init(caption: String) throws {
        var words = caption.replacingOccurrences(of: ",", with: " ").split(separator: " ").map(String.init)
        func fail(_ why: String) -> ShapesError { .unparsableCaption(caption, why) }
        func next() throws -> String {
            guard !words.isEmpty else { throw fail("ends early") }
            return words.removeFirst()
        }
        func object(plural: Bool) throws -> ObjectAttributes {
            guard let size = ShapeSize(rawValue: try next()) else { throw fail("expected a size") }
            guard let color = ShapeColor(rawValue: try next()) else { throw fail("expected a colour") }
            let word = try next()
            guard let shape = ShapeKind.allCases.first(where: { (plural ? $0.plural : $0.rawValue) == word }) else {
                throw fail("expected a shape, found \"\(word)\"")
            }
            return ObjectAttributes(shape: shape, color: color, size: size)
        }
        func motion() throws -> Motion {
            guard !words.isEmpty else { return .static }
            guard try next() == "moving", let m = Motion(rawValue: try next()), m != .static else {
                throw fail("expected \"moving left|right|up|down\"")
            }
            return m
        }
        let first = try next()
        switch first {
        case "two", "three":
            let o = try object(plural: true)
            self.init(objects: Array(repeating: o, count: first == "two" ? 2 : 3), motion: try motion())
        case "a":
            let subject = try object(plural: false)
            if words.isEmpty || words.first == "moving" {
                self.init(objects: [subject], motion: try motion())
                break
            }
            let phrase = Relation.allCases.first { r in
                let p = r.phrase.split(separator: " ").map(String.init)
                return words.count >= p.count && Array(words[0..<p.count]) == p
            }
            guard let phrase else { throw fail("expected a relation") }
            words.removeFirst(phrase.phrase.split(separator: " ").count)
            guard try next() == "a" else { throw fail("expected \"a\" before the second object") }
            let reference = try object(plural: false)
            var m = Motion.static
            if !words.isEmpty {
                guard try next() == "both" else { throw fail("expected \", both moving …\"") }
                m = try motion()
                guard m != .static else { throw fail("expected a direction after \"both\"") }
            }
            self.init(objects: [subject, reference], relation: phrase, motion: m)
        default:
            throw fail("starts with \"\(first)\", expected a, two or three")
        }
        guard words.isEmpty else { throw fail("unexpected words at the end: \(words.joined(separator: " "))") }
        try validate()
    }
}

/// Errors of the Shapes dataset: bad attribute records, captions outside the grammar, bad manifests and options.
public enum ShapesError: Error, CustomStringConvertible, Equatable {
    /// An attribute record breaks a rule of the grammar.
    case invalidAttributes(String)
    /// A caption the grammar cannot produce.
    case unparsableCaption(String, String)
    /// A generator or renderer option out of range (names the field).
    case invalidOption(String)
    /// A manifest line that cannot be used (file, line number, reason).
    case badManifest(file: String, line: Int, reason: String)

    /// A one-line message.
    public var description: String {
        switch self {
        case .invalidAttributes(let reason): return "invalid Shapes attributes: \(reason)"
        case .unparsableCaption(let caption, let why): return "caption \"\(caption)\" is outside the grammar: \(why)"
        case .invalidOption(let reason): return "invalid Shapes option: \(reason)"
        case .badManifest(let file, let line, let reason): return "\(file):\(line): \(reason)"
        }
    }
}
