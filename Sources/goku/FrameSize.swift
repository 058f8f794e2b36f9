import ArgumentParser

/// A `--size WIDTHxHEIGHT` option's value.
enum FrameSize {
    /// "64x64" → (64, 64); both positive.
    /// - Throws: `ValidationError` naming the option and the expected form.
    static func parse(_ text: String) throws -> (width: Int, height: Int) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else {
            throw ValidationError("--size '\(text)': expected WxH, e.g. 64x64")
        }
        return (w, h)
    }
}
