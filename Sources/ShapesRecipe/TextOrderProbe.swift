import Foundation
import GokuPipeline
import ShapesDataset
import TensorCore

/// How much a text encoder's states depend on word order, measured on Shapes pair captions (`goku eval text`).
///
/// The transformer's cross-attention reads the text as a set of states: its keys carry no position. So a caption and
/// its mirror with the same words ("a red square above a blue circle" and "a blue circle above a red square") can only
/// mean different layouts to the transformer if the encoder gives the same word different states in the two. The
/// probe reports that difference for the object words (size, colour, shape): the relative change ‖s − s′‖ / ‖s‖ of a
/// word's state when
/// - **objects swapped**: the two objects trade places around the same relation (the same words, mirrored meaning);
/// - **relation flipped**: the relation turns into its opposite ("above" ↔ "below", "left of" ↔ "right of").
/// An encoder blind to word order scores 0 on the first; one that ignores the relation, 0 on the second. Use static
/// scenes: a moving pair's caption ends "circle, both moving …", and "circle," is not the word "circle".
public enum TextOrderProbe {
    /// The probe's two figures, means over the object words of `pairs` captions.
    public struct Result: Sendable {
        public var pairs: Int
        public var swappedObjects: Double
        public var flippedRelation: Double

        /// One line for the command line.
        public var summary: String {
            "text order probe (\(pairs) pair captions): objects swapped \(format(swappedObjects)), relation flipped "
                + "\(format(flippedRelation)) (relative change of the object words' states; 0 for an encoder blind to it)"
        }
        private func format(_ x: Double) -> String { String(format: "%.3f", x) }
    }

    /// Measures `text` on the pair scenes among `scenes` (others are skipped).
    public static func measure(text: TextConditioning, scenes: [SceneAttributes]) -> Result {
        let pairs = scenes.filter(\.isPair)
        guard !pairs.isEmpty else { return Result(pairs: 0, swappedObjects: .nan, flippedRelation: .nan) }
        let swapped = pairs.map { SceneAttributes(objects: [$0.objects[1], $0.objects[0]], relation: $0.relation, motion: $0.motion) }
        let flipped = pairs.map { SceneAttributes(objects: $0.objects, relation: $0.relation!.opposite, motion: $0.motion) }
        func states(_ s: [SceneAttributes]) -> (values: [Float], length: Int, width: Int) {
            let t = Autograd.inference { text.encodeBatch(s.map(\.caption)).states }
            return (t.scalars, t.shape[1], t.shape[2])
        }
        let base = states(pairs), swappedStates = states(swapped), flippedStates = states(flipped)
        let (length, width) = (base.length, base.width)
        func change(_ a: [Float], _ b: [Float], _ i: Int, _ p: Int, _ q: Int) -> Double {
            var difference = 0.0, norm = 0.0
            for d in 0..<width {
                let x = Double(a[(i * length + p) * width + d]), y = Double(b[(i * length + q) * width + d])
                difference += (x - y) * (x - y)
                norm += x * x
            }
            return (difference / max(norm, 1e-30)).squareRoot()
        }
        var swapSum = 0.0, flipSum = 0.0, count = 0
        for (i, scene) in pairs.enumerated() {
            let (subject, reference) = CaptionRole.objectWordPositions(scene)
            guard reference.last! < length else { continue }  // truncated caption
            for (p, q) in zip(subject + reference, reference + subject) {
                swapSum += change(base.values, swappedStates.values, i, p, q)  // the same word, in the other slot
                flipSum += change(base.values, flippedStates.values, i, p, p)
                count += 1
            }
        }
        return Result(
            pairs: pairs.count, swappedObjects: count == 0 ? .nan : swapSum / Double(count),
            flippedRelation: count == 0 ? .nan : flipSum / Double(count))
    }
}
