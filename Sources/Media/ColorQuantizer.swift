/// Maps RGB pixels to at most 256 palette indices for GIF.
///
/// Exact when the frames hold at most 256 distinct colours (allowed by `.automatic`); otherwise the 6×7×6 colour cube,
/// where each channel `v` (0…255) with `L` levels becomes level `floor(v · (L − 1) / 255 + θ)`: θ = ½ rounds to the
/// nearest level, and with dithering θ is the 4×4 Bayer threshold `(b + ½) / 16` of the pixel's position, which trades
/// banding for a fixed, frame-stable pattern (ordered rather than error-diffusion dithering, so a static background
/// does not shimmer from frame to frame).
struct ColorQuantizer {
    /// Palette entries, 3 bytes each.
    let table: [UInt8]
    private let exact: [Int: UInt8]?
    private let dithering: Bool

    static let levels = (red: 6, green: 7, blue: 6)
    static let bayer: [Int] = [0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5]

    init(frames: [RGBImage], palette: GIFCodec.Palette) {
        var useExact = false
        switch palette {
        case .automatic(let d): dithering = d; useExact = true
        case .colorCube(let d): dithering = d
        }
        if useExact {
            var colours: [Int: UInt8] = [:]
            var table: [UInt8] = []
            scan: for frame in frames {
                let p = frame.pixels
                for i in stride(from: 0, to: p.count, by: 3) {
                    let key = Int(p[i]) << 16 | Int(p[i + 1]) << 8 | Int(p[i + 2])
                    if colours[key] != nil { continue }
                    if colours.count == 256 { useExact = false; break scan }
                    colours[key] = UInt8(colours.count)
                    table += [p[i], p[i + 1], p[i + 2]]
                }
            }
            if useExact {
                exact = colours
                self.table = table
                return
            }
        }
        exact = nil
        var table: [UInt8] = []
        let l = ColorQuantizer.levels
        for r in 0..<l.red {
            for g in 0..<l.green {
                for b in 0..<l.blue {
                    table += [r, g, b].enumerated().map { c, level in
                        let n = [l.red, l.green, l.blue][c]
                        return UInt8((Double(level * 255) / Double(n - 1)).rounded())
                    }
                }
            }
        }
        self.table = table
    }

    /// The palette index of every pixel of `frame`, row-major.
    func indices(_ frame: RGBImage) -> [UInt8] {
        let p = frame.pixels
        var out = [UInt8](repeating: 0, count: frame.width * frame.height)
        if let exact {
            for i in out.indices {
                out[i] = exact[Int(p[3 * i]) << 16 | Int(p[3 * i + 1]) << 8 | Int(p[3 * i + 2])]!
            }
            return out
        }
        let l = ColorQuantizer.levels
        func level(_ v: UInt8, _ n: Int, _ theta: Double) -> Int {
            min(n - 1, max(0, Int((Double(v) * Double(n - 1) / 255 + theta).rounded(.down))))
        }
        for y in 0..<frame.height {
            for x in 0..<frame.width {
                let i = y * frame.width + x
                let theta = dithering ? (Double(ColorQuantizer.bayer[(y & 3) * 4 + (x & 3)]) + 0.5) / 16 : 0.5
                let r = level(p[3 * i], l.red, theta)
                let g = level(p[3 * i + 1], l.green, theta)
                let b = level(p[3 * i + 2], l.blue, theta)
                out[i] = UInt8((r * l.green + g) * l.blue + b)
            }
        }
        return out
    }
}
