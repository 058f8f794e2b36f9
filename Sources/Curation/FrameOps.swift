import Foundation
import VideoIO

/// A single-channel float image, row-major.
public struct GreyImage: Sendable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `height * width` values.
    public var values: [Float]

    /// An image from its values.
    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height, "GreyImage: \(values.count) values for \(width)x\(height)")
        self.width = width
        self.height = height
        self.values = values
    }

    /// Luma (BT.601: 0.299 R + 0.587 G + 0.114 B) of an RGB frame, 0–255.
    public init(_ frame: RGBFrame) {
        let count = frame.width * frame.height
        var values = [Float](repeating: 0, count: count)
        frame.pixels.withUnsafeBufferPointer { p in
            for i in 0..<count {
                values[i] = 0.299 * Float(p[3 * i]) + 0.587 * Float(p[3 * i + 1]) + 0.114 * Float(p[3 * i + 2])
            }
        }
        self.init(width: frame.width, height: frame.height, values: values)
    }

    /// Area-averaged resize (each output pixel is the mean of the input pixels its footprint covers).
    public func resized(width newWidth: Int, height newHeight: Int) -> GreyImage {
        var out = [Float](repeating: 0, count: newWidth * newHeight)
        let sx = Double(width) / Double(newWidth)
        let sy = Double(height) / Double(newHeight)
        for oy in 0..<newHeight {
            let y0 = Int(Double(oy) * sy)
            let y1 = max(y0 + 1, min(height, Int((Double(oy + 1) * sy).rounded(.up))))
            for ox in 0..<newWidth {
                let x0 = Int(Double(ox) * sx)
                let x1 = max(x0 + 1, min(width, Int((Double(ox + 1) * sx).rounded(.up))))
                var sum: Float = 0
                for y in y0..<y1 { for x in x0..<x1 { sum += values[y * width + x] } }
                out[oy * newWidth + ox] = sum / Float((y1 - y0) * (x1 - x0))
            }
        }
        return GreyImage(width: newWidth, height: newHeight, values: out)
    }

    /// Half size by 2×2 averaging (odd edges dropped).
    public func halved() -> GreyImage {
        let w = max(1, width / 2)
        let h = max(1, height / 2)
        return resized(width: w, height: h)
    }

    /// Variance of the 4-neighbour Laplacian: the sharpness measure used to break ties in deduplication.
    public var laplacianVariance: Double {
        guard width > 2, height > 2 else { return 0 }
        var sum = 0.0
        var sumSquares = 0.0
        var n = 0.0
        for y in 1..<(height - 1) {
            for x in 1..<(width - 1) {
                let i = y * width + x
                let l = Double(values[i - 1] + values[i + 1] + values[i - width] + values[i + width] - 4 * values[i])
                sum += l
                sumSquares += l * l
                n += 1
            }
        }
        let mean = sum / n
        return sumSquares / n - mean * mean
    }
}

/// HSV planes with OpenCV's 8-bit ranges (H 0–180, S and V 0–255), as PySceneDetect computes them.
struct HSVPlanes {
    var hue: [Float]
    var saturation: [Float]
    var value: [Float]

    init(_ frame: RGBFrame) {
        let count = frame.width * frame.height
        hue = [Float](repeating: 0, count: count)
        saturation = [Float](repeating: 0, count: count)
        value = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let r = Float(frame.pixels[3 * i])
            let g = Float(frame.pixels[3 * i + 1])
            let b = Float(frame.pixels[3 * i + 2])
            let v = max(r, g, b)
            let delta = v - min(r, g, b)
            let s: Float = v > 0 ? 255 * delta / v : 0
            var h: Float = 0
            if delta > 0 {
                if v == r {
                    h = 60 * (g - b) / delta
                } else if v == g {
                    h = 120 + 60 * (b - r) / delta
                } else {
                    h = 240 + 60 * (r - g) / delta
                }
                if h < 0 { h += 360 }
            }
            hue[i] = h / 2
            saturation[i] = s
            value[i] = v
        }
    }

    /// PySceneDetect ContentDetector's frame score: the mean of the mean absolute differences of H, S and V.
    func contentDifference(_ other: HSVPlanes) -> Double {
        func meanAbsolute(_ a: [Float], _ b: [Float]) -> Double {
            var sum: Float = 0
            for i in 0..<a.count { sum += abs(a[i] - b[i]) }
            return Double(sum) / Double(max(1, a.count))
        }
        return
            (meanAbsolute(hue, other.hue) + meanAbsolute(saturation, other.saturation)
            + meanAbsolute(value, other.value)) / 3
    }
}

/// A frame as a model input: resized to size × size (bilinear, half-pixel centres as align_corners = false; squashed,
/// not cropped, so the whole frame is seen), scaled to [0, 1] and normalised per channel; channel-major (3, S, S).
func normalizedPixels(_ frame: RGBFrame, size s: Int, mean: [Float], standardDeviation: [Float]) -> [Float] {
    var pixels = [Float](repeating: 0, count: 3 * s * s)
    let sx = Float(frame.width) / Float(s)
    let sy = Float(frame.height) / Float(s)
    for y in 0..<s {
        let fy = max(0, (Float(y) + 0.5) * sy - 0.5)
        let y0 = min(frame.height - 1, Int(fy))
        let y1 = min(frame.height - 1, y0 + 1)
        let ty = fy - Float(y0)
        for x in 0..<s {
            let fx = max(0, (Float(x) + 0.5) * sx - 0.5)
            let x0 = min(frame.width - 1, Int(fx))
            let x1 = min(frame.width - 1, x0 + 1)
            let tx = fx - Float(x0)
            for c in 0..<3 {
                func at(_ xx: Int, _ yy: Int) -> Float { Float(frame.pixels[(yy * frame.width + xx) * 3 + c]) }
                let top = at(x0, y0) * (1 - tx) + at(x1, y0) * tx
                let bottom = at(x0, y1) * (1 - tx) + at(x1, y1) * tx
                let value = (top * (1 - ty) + bottom * ty) / 255
                pixels[(c * s + y) * s + x] = (value - mean[c]) / standardDeviation[c]
            }
        }
    }
    return pixels
}
