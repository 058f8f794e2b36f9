import TensorCore

/// One generated sample: caption, ground truth and pixels.
public struct ShapesSample: @unchecked Sendable {
    /// The caption, from the grammar of `SceneAttributes`.
    public var caption: String
    /// The ground-truth record (the caption parsed back gives the same record).
    public var attributes: SceneAttributes
    /// Where the objects were placed.
    public var layout: SceneLayout
    /// Pixels `(3, T, H, W)` in [-1, 1]; T = 1 for an image.
    public var video: Tensor

    /// Whether this is an image (one frame).
    public var isImage: Bool { video.shape[1] == 1 }
}

/// The procedural Shapes dataset: sample `i` of a seed is always the same, whatever the order, thread or machine.
///
/// Each index gets its own `ShapesRandom(seed:, stream: index)`; the first draw decides image (probability
/// `imageFraction`, or always when `frames == 1`) or video, then the scene (`ShapesPromptSet.random`, restricted to
/// `split`: by default the training split, so held-out evaluation captions never appear), then the layout. Images
/// are one frame and static; videos have `frames` frames.
public struct ShapesGenerator: Sendable {
    /// The dataset seed.
    public let seed: UInt64
    /// Frame width and height in pixels (at least 16).
    public let width: Int, height: Int
    /// Frames of a video sample (1 makes every sample an image).
    public let frames: Int
    /// Share of samples that are images, in [0, 1].
    public let imageFraction: Double
    /// The captions drawn from.
    public let split: PromptSplit

    /// A generator; throws `ShapesError.invalidOption` naming the bad field.
    public init(
        seed: UInt64, width: Int, height: Int, frames: Int, imageFraction: Double, split: PromptSplit = .training
    ) throws {
        guard width >= 16, height >= 16, width <= 8192, height <= 8192 else {
            throw ShapesError.invalidOption("size \(width)x\(height): width and height must be 16 to 8192")
        }
        guard frames >= 1, frames <= 4096 else {
            throw ShapesError.invalidOption("frames \(frames): must be 1 to 4096")
        }
        guard imageFraction >= 0, imageFraction <= 1 else {
            throw ShapesError.invalidOption("imageFraction \(imageFraction): must be in [0, 1]")
        }
        self.seed = seed
        self.width = width
        self.height = height
        self.frames = frames
        self.imageFraction = imageFraction
        self.split = split
    }

    /// The scene and layout of sample `index`, without rendering.
    public func scene(at index: Int) -> (attributes: SceneAttributes, layout: SceneLayout, frames: Int) {
        precondition(index >= 0, "ShapesGenerator: negative index \(index)")
        var rng = ShapesRandom(seed: seed, stream: UInt64(index))
        let isImage = frames == 1 || rng.uniform() < imageFraction
        let attributes = ShapesPromptSet.random(using: &rng, video: !isImage, split: split)
        let layout = SceneLayout(attributes: attributes, width: width, height: height, using: &rng)
        return (attributes, layout, isImage ? 1 : frames)
    }

    /// Sample `index`: its caption, record, layout and pixels.
    public func sample(at index: Int) -> ShapesSample {
        let (attributes, layout, t) = scene(at: index)
        let video = ShapesRenderer.render(attributes, layout: layout, width: width, height: height, frames: t)
        return ShapesSample(caption: attributes.caption, attributes: attributes, layout: layout, video: video)
    }

    /// Renders a given record (an evaluation prompt's ground truth) with a layout drawn from `seed`.
    public static func render(
        _ attributes: SceneAttributes, width: Int, height: Int, frames: Int, seed: UInt64 = 0
    ) -> ShapesSample {
        var rng = ShapesRandom(seed: seed, stream: ShapesPromptSet.fnv1a(attributes.caption))
        let layout = SceneLayout(attributes: attributes, width: width, height: height, using: &rng)
        let video = ShapesRenderer.render(attributes, layout: layout, width: width, height: height, frames: frames)
        return ShapesSample(caption: attributes.caption, attributes: attributes, layout: layout, video: video)
    }
}
