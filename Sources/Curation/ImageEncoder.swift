import Foundation
import VideoIO

/// Maps a frame to an embedding whose cosine similarity says "same shot" (the paper uses DINOv2 features).
/// Implementations must be safe to call from several worker threads.
public protocol ImageEncoder: Sendable {
    /// A short name recorded in the index, e.g. "color-edge-v1" or "dinov2-vitb14".
    var name: String { get }
    /// The embedding of one frame.
    func embed(_ frame: RGBFrame) -> [Float]
}

/// The default encoder when no DINOv2 weights are given: a colour histogram and an edge-orientation histogram.
///
/// Colour: an HSV histogram with 8 hue × 4 saturation × 4 value bins. Edges: 8 gradient orientations weighted by
/// magnitude in each cell of a 4×4 grid (a coarse HOG). Each part is L1-normalised and square-rooted, so the cosine
/// of two descriptors is the mean of the two Bhattacharyya coefficients: 1 for the same distribution, and well below
/// 0.85 for unrelated scenes, where raw non-negative histograms would still score high cosines.
public struct ColorEdgeEncoder: ImageEncoder {
    /// "color-edge-v1".
    public let name = "color-edge-v1"

    /// The encoder.
    public init() {}

    /// 128 colour values then 128 edge values.
    public func embed(_ frame: RGBFrame) -> [Float] {
        let hsv = HSVPlanes(frame)
        var colour = [Float](repeating: 0, count: 128)
        for i in 0..<hsv.hue.count {
            let h = min(7, Int(hsv.hue[i] / 180 * 8))
            let s = min(3, Int(hsv.saturation[i] / 256 * 4))
            let v = min(3, Int(hsv.value[i] / 256 * 4))
            colour[(h * 4 + s) * 4 + v] += 1
        }
        let grey = GreyImage(frame)
        var edges = [Float](repeating: 0, count: 128)
        let (w, h) = (grey.width, grey.height)
        if w > 2 && h > 2 {
            for y in 1..<(h - 1) {
                for x in 1..<(w - 1) {
                    let gx = grey.values[y * w + x + 1] - grey.values[y * w + x - 1]
                    let gy = grey.values[(y + 1) * w + x] - grey.values[(y - 1) * w + x]
                    let magnitude = (gx * gx + gy * gy).squareRoot()
                    guard magnitude > 4 else { continue }
                    var angle = atan2(gy, gx)
                    if angle < 0 { angle += .pi }  // orientation, not direction
                    let bin = min(7, Int(angle / .pi * 8))
                    let cell = min(3, y * 4 / h) * 4 + min(3, x * 4 / w)
                    edges[cell * 8 + bin] += magnitude
                }
            }
        }
        func hellinger(_ v: [Float]) -> [Float] {
            let total = v.reduce(0, +)
            guard total > 0 else { return v }
            return v.map { ($0 / total).squareRoot() / Float(2).squareRoot() }
        }
        return hellinger(colour) + hellinger(edges)
    }
}

/// Cosine similarity of two embeddings (0 when either is zero).
public func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "cosineSimilarity: \(a.count) vs \(b.count)")
    var dot = 0.0
    var na = 0.0
    var nb = 0.0
    for i in 0..<a.count {
        dot += Double(a[i]) * Double(b[i])
        na += Double(a[i]) * Double(a[i])
        nb += Double(b[i]) * Double(b[i])
    }
    guard na > 0, nb > 0 else { return na == nb ? 1 : 0 }
    return dot / (na.squareRoot() * nb.squareRoot())
}
