import Foundation
import VideoIO

/// An aesthetic predictor: the paper uses LAION's (a CLIP ViT-L/14 image embedding followed by an MLP, scores ≈ 1–10),
/// averaged over a clip's keyframes. Implementations must be safe to call from several worker threads.
///
/// `LAIONAestheticScorer` is the paper's; when `CurationConfig.aestheticWeights` is nil (and no scorer is given to the
/// pipeline) the aesthetic stage is recorded as "skipped" for every clip, its threshold is not applied, and
/// deduplication falls back to sharpness. A score is never made up.
public protocol AestheticScorer: Sendable {
    /// A short name recorded in the index.
    var name: String { get }
    /// The score of one frame.
    func score(_ frame: RGBFrame) throws -> Double
}
