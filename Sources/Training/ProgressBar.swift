import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A progress bar for long work: `label [#####.....] 120/1000 12% loss 0.1234 2.31 it/s ETA 6m20s`.
///
/// On a terminal the line is redrawn in place at most ten times a second. When the output is not a terminal (a log
/// file, CI), one plain line is printed every `plainInterval` seconds and at the end, so logs stay readable. The rate
/// is an average over the items done since the bar started (or since `resume(at:)`), which is what an ETA needs.
public final class ProgressBar {
    /// What the bar counts to.
    public let total: Int
    /// The word before the bar (`train`, `sample`, `encode`).
    public let label: String
    /// Whether the line is redrawn in place (a terminal) or printed as plain lines.
    public let isInteractive: Bool
    /// Seconds between plain lines when the output is not a terminal.
    public var plainInterval: Double = 10
    /// Unit of the rate (`it`, `frames`, `clips`).
    public var unit = "it"

    private let output: FileHandle
    private let width = 24
    private var start: Date
    private var startCount: Int
    private var lastDraw = Date.distantPast
    private var completed = 0
    private var metrics: [(String, Double)] = []
    private var finished = false
    private var lastPlainCompleted: Int?

    /// A bar counting to `total`, drawn on `output` (standard error by default, so standard output stays clean for
    /// results). `interactive` overrides the terminal detection.
    public init(total: Int, label: String, output: FileHandle = .standardError, interactive: Bool? = nil) {
        self.total = max(total, 0)
        self.label = label
        self.output = output
        self.isInteractive = interactive ?? (isatty(output.fileDescriptor) == 1)
        start = Date()
        startCount = 0
    }

    /// Starts counting from `completed` items already done (a resumed run), so the rate covers new work only.
    public func resume(at completed: Int) {
        self.completed = completed
        startCount = completed
        start = Date()
    }

    /// Records progress and the metrics to show (name, value), redrawing when due.
    public func update(completed: Int, metrics: [(String, Double)] = []) {
        self.completed = min(completed, total)
        self.metrics = metrics
        let now = Date()
        let due = isInteractive ? now.timeIntervalSince(lastDraw) >= 0.1 : now.timeIntervalSince(lastDraw) >= plainInterval
        if due || self.completed == total { draw(now: now) }
    }

    /// Advances by one item.
    public func step(metrics: [(String, Double)] = []) { update(completed: completed + 1, metrics: metrics) }

    /// Draws the final state and ends the line.
    public func finish() {
        guard !finished else { return }
        finished = true
        draw(now: Date(), force: true)
        if isInteractive { write("\n") }
    }

    /// The text of the line for the current state (without control characters).
    public func line(now: Date = Date()) -> String {
        let fraction = total > 0 ? Double(completed) / Double(total) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var parts = ["\(label) [\(bar)] \(completed)/\(total) \(Int(fraction * 100))%"]
        for (name, value) in metrics { parts.append("\(name) \(Self.format(value))") }
        let elapsed = now.timeIntervalSince(start)
        let done = completed - startCount
        if done > 0 && elapsed > 0 {
            let rate = Double(done) / elapsed
            parts.append(rate >= 1 ? String(format: "%.2f \(unit)/s", rate) : String(format: "%.2f s/\(unit)", 1 / rate))
            let remaining = Double(total - completed) / rate
            parts.append(completed < total ? "ETA \(Self.duration(remaining))" : "in \(Self.duration(elapsed))")
        }
        return parts.joined(separator: "  ")
    }

    private func draw(now: Date, force: Bool = false) {
        guard force || !finished else { return }
        let text = line(now: now)
        lastDraw = now
        if isInteractive {
            write("\r\u{1B}[2K" + text)
        } else if !(force && lastPlainCompleted == completed) {
            // A log gets each count once: `finish` right after the update that reached the total adds nothing.
            write(text + "\n")
            lastPlainCompleted = completed
        }
    }

    private func write(_ text: String) { output.write(Data(text.utf8)) }

    /// A compact number: 4 significant digits, scientific for very small or large values.
    public static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        return magnitude < 1e-3 || magnitude >= 1e5 ? String(format: "%.3e", value) : String(format: "%.4g", value)
    }

    /// `2h05m`, `6m20s` or `12s`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
