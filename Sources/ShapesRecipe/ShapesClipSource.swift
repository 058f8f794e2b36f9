import Foundation
import ShapesDataset
import TensorCore
import VAETraining

/// Clips rendered on the fly from the procedural Shapes dataset: videos from one stream, images from another.
///
/// Training uses the training caption split; `heldOut` gives samples from another stream of the seed restricted to
/// the evaluation captions, so evaluation clips are never trained on.
public struct ShapesClipSource: ClipSource {
    let videos: ShapesGenerator
    let images: ShapesGenerator

    /// - Parameters: options: size, frames and seed; heldOut: the evaluation stream instead of the training one.
    public init(_ options: ShapesDataOptions, heldOut: Bool = false) throws {
        let seed = heldOut ? options.seed &+ 0x9E37_79B9_7F4A_7C15 : options.seed
        let split: PromptSplit = heldOut ? .evaluation : .training
        videos = try ShapesGenerator(
            seed: seed, width: options.width, height: options.height, frames: options.frames, imageFraction: 0,
            split: split)
        images = try ShapesGenerator(
            seed: seed &+ 1, width: options.width, height: options.height, frames: 1, imageFraction: 1, split: split)
    }

    public func video(at index: Int) throws -> Tensor { videos.sample(at: index).video }
    public func image(at index: Int) throws -> Tensor { images.sample(at: index).video }
}
