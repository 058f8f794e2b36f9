import Foundation

/// Data-distribution balancing (paper §4.4): a category per clip from keywords in its caption (the paper uses an
/// internal classifier with 9 primary classes; these are its named ones plus "other"), and a sampling weight that
/// evens out categories, with human content up-weighted.
public struct Balancer: Sendable {
    /// Categories and their keywords, checked in this order; the category with the most keyword hits wins.
    public var categories: [(name: String, keywords: [String])] = [
        (
            "human",
            [
                "person", "people", "man", "woman", "men", "women", "child", "children", "kid", "boy", "girl", "face",
                "crowd", "dancer", "player", "selfie", "wedding", "family", "human",
            ]
        ),
        ("animals", ["animal", "dog", "cat", "bird", "horse", "fish", "cow", "wildlife", "insect", "pet"]),
        ("food", ["food", "dish", "meal", "dinner", "cooking", "kitchen", "fruit", "vegetable", "drink", "plate"]),
        (
            "scenery",
            [
                "landscape", "mountain", "sky", "ocean", "sea", "forest", "river", "beach", "sunset", "lake",
                "field", "cloud", "nature",
            ]
        ),
        ("urban", ["city", "street", "building", "car", "traffic", "road", "skyline", "bridge", "train", "urban"]),
        (
            "graphics",
            ["pattern", "animation", "graphic", "text", "logo", "color bars", "abstract", "shape", "gradient"]
        ),
    ]
    /// Multiplier for the "human" category before normalisation.
    public var humanWeight: Double

    /// A balancer with the default categories.
    public init(humanWeight: Double = 1.5) { self.humanWeight = humanWeight }

    /// The category of a caption ("other" when no keyword matches).
    public func category(of caption: String) -> String {
        let words = caption.lowercased()
        let tokens = Set(words.split(whereSeparator: { !$0.isLetter }).map(String.init))
        var best = ("other", 0)
        for (name, keywords) in categories {
            let hits = keywords.filter { $0.contains(" ") ? words.contains($0) : tokens.contains($0) }.count
            if hits > best.1 { best = (name, hits) }
        }
        return best.0
    }

    /// Sampling weights: each category gets an equal share of the total (human content `humanWeight` shares), split
    /// evenly among its clips; weights are scaled to mean 1.
    public func weights(categories clipCategories: [String]) -> [Double] {
        guard !clipCategories.isEmpty else { return [] }
        var counts: [String: Int] = [:]
        for c in clipCategories { counts[c, default: 0] += 1 }
        let raw = clipCategories.map { c in (c == "human" ? humanWeight : 1) / Double(counts[c]!) }
        let mean = raw.reduce(0, +) / Double(raw.count)
        return raw.map { $0 / mean }
    }
}
