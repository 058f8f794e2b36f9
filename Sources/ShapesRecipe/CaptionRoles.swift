import GokuPipeline
import NN
import ShapesDataset
import TensorCore

/// Where in the frame the object a caption word describes lies: the label of the text encoder's auxiliary
/// objective (`CaptionRoleObjective`).
///
/// Size, colour and shape words take their object's role: `sole` for a single object or a group, and for a pair the
/// side the relation puts that object on ("a red square below a blue circle": red, square → `bottom`; blue, circle
/// → `top`). Every other word (articles, the relation, motion, count words) and `</s>` are `none`.
public enum CaptionRole: Int, CaseIterable, Sendable {
    case none = 0, sole, left, right, top, bottom

    /// The per-word roles of a caption of the Shapes grammar, in word order (split on spaces, as the Shapes
    /// tokenizer splits it into one piece per word); nil for text outside the grammar.
    public static func labels(caption: String) -> [CaptionRole]? {
        guard let scene = try? SceneAttributes(caption: caption) else { return nil }
        var labels = [CaptionRole](repeating: .none, count: caption.split(separator: " ").count)
        let first: CaptionRole, second: CaptionRole
        switch scene.relation {
        case nil: (first, second) = (.sole, .none)
        case .leftOf?: (first, second) = (.left, .right)
        case .rightOf?: (first, second) = (.right, .left)
        case .above?: (first, second) = (.top, .bottom)
        case .below?: (first, second) = (.bottom, .top)
        }
        let positions = objectWordPositions(scene)
        for i in positions.subject { labels[i] = first }
        for i in positions.reference { labels[i] = second }
        return labels
    }

    /// Word positions of the size, colour and shape of the caption's first object and, for a pair, of its second
    /// (empty otherwise). The grammar's layout: groups "N size colour shapes …", singles and pairs "a size colour
    /// shape …", a pair's second object "… a size colour shape" right after the relation phrase.
    public static func objectWordPositions(_ scene: SceneAttributes) -> (subject: [Int], reference: [Int]) {
        guard let relation = scene.relation else { return (Array(1...3), []) }
        let start = 4 + relation.phrase.split(separator: " ").count + 1  // after the phrase and "a"
        return (Array(1...3), Array(start..<(start + 3)))
    }
}

/// The text encoder's auxiliary objective: a linear head on the encoder's output states predicts each caption
/// word's `CaptionRole`, with cross-entropy, added to the flow loss with a weight.
///
/// Why: the Shapes T5 is trained from scratch by the flow loss alone, and that signal leaves its states nearly
/// context-free: the state of "red" is the same in "a red square above a blue circle" and "a blue square above a
/// red circle", and "above" and "below" end up almost alike. The transformer's cross-attention sees the text as a set
/// of states (the keys carry no word order), so for it these two captions are the same set: relative position cannot
/// be learned. A pretrained language model (the paper's Flan-T5) brings order-aware states; this objective is the
/// small model's stand-in, asking each object word's state to carry which side of the frame its object is on, which
/// needs the relation word and the word order. The head is used in training only and is not exported.
public final class CaptionRoleObjective {
    /// The head: text width → the six roles.
    public let head: Linear

    /// A head for states `dimension` wide, initialised from `generator`.
    public init(dimension: Int, generator: RandomGenerator) {
        head = Linear(dimension, CaptionRole.allCases.count, generator: generator)
    }

    /// The prefix of the head's keys in the trainer's checkpoint (`model` group).
    public static let prefix = "text_role_head."

    /// Its parameters, named under `text_role_head.`.
    public var namedParameters: [(key: String, tensor: Tensor)] {
        head.namedParameters().map { (key: Self.prefix + $0.key, tensor: $0.tensor) }
    }

    /// One-hot targets (B, L, roles) for `captions` padded to `length` tokens: the words' roles, `none` for `</s>`,
    /// all zero (ignored) for padding, for the empty caption and for text outside the grammar. Also the number of
    /// labelled tokens.
    public static func targets(captions: [String], length: Int) -> (oneHot: Tensor, count: Int) {
        let roles = CaptionRole.allCases.count
        var values = [Float](repeating: 0, count: captions.count * length * roles)
        var count = 0
        for (b, caption) in captions.enumerated() {
            guard var labels = CaptionRole.labels(caption: caption) else { continue }
            labels.append(.none)  // </s>
            guard labels.count <= length else { continue }  // truncated: word and token positions no longer line up
            for (position, role) in labels.enumerated() {
                values[(b * length + position) * roles + role.rawValue] = 1
            }
            count += labels.count
        }
        return (Tensor(shape: [captions.count, length, roles], scalars: values), count)
    }

    /// The head's most likely role per token of `states` (B, L, D): B rows of L roles.
    public func predictedRoles(states: Tensor) -> [[CaptionRole]] {
        let logits = Autograd.inference { head(states) }
        let (batch, length, roles) = (logits.shape[0], logits.shape[1], logits.shape[2])
        let values = logits.scalars
        return (0..<batch).map { b in
            (0..<length).map { t in
                let row = values[((b * length + t) * roles)..<((b * length + t + 1) * roles)]
                return CaptionRole(rawValue: row.indices.max { row[$0] < row[$1] }! - row.startIndex)!
            }
        }
    }

    /// Mean cross-entropy over the labelled tokens of `states` (B, L, D); nil when none is labelled.
    public func loss(states: Tensor, captions: [String]) -> Tensor? {
        let (oneHot, count) = Self.targets(captions: captions, length: states.shape[1])
        guard count > 0 else { return nil }
        let logProbabilities = head(states).logSoftmax(axis: -1)
        return (logProbabilities * oneHot).sum() * Tensor(-1 / Float(count))
    }
}
