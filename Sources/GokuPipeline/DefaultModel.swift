import Foundation

/// Where `goku generate` finds its model when `--model` is not given.
///
/// The small Shapes model ships in the repository at `models/goku-shapes`. It is looked up, in order: `$GOKU_MODEL`,
/// then `models/goku-shapes` in the current directory and its parents, then beside the executable and its parents
/// (a `.build/release/goku` finds the checkout it was built in).
public enum DefaultModel {
    /// The folder name of the shipped model inside the repository.
    public static let relativePath = "models/goku-shapes"

    /// `path` when given, else the located default model.
    /// - Throws: `GokuPipelineError.missingModel` when no path is given and no default model is found.
    public static func resolve(_ path: String?) throws -> URL {
        if let path { return URL(fileURLWithPath: path) }
        guard let found = locate() else {
            throw GokuPipelineError.missingModel(
                folder: relativePath, reason: "no model: pass --model DIR or set GOKU_MODEL (the shipped model lives here)")
        }
        return found
    }

    /// The first folder that holds a model, or nil.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let path = environment["GOKU_MODEL"], !path.isEmpty { return URL(fileURLWithPath: path) }
        var starts = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        starts.append(executable.deletingLastPathComponent())
        for start in starts {
            var folder = start.standardizedFileURL
            while true {
                let candidate = folder.appendingPathComponent(relativePath)
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(GokuModelBundle.Layout.index).path) {
                    return candidate
                }
                let parent = folder.deletingLastPathComponent()
                if parent.path == folder.path { break }
                folder = parent
            }
        }
        return nil
    }
}
