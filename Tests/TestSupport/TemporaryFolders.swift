import Foundation

/// Fresh folders under the system's temporary directory for tests, all removed when the test process exits.
///
/// Tests that write files ask for a folder here instead of naming one, so a run leaves nothing behind, whether a test
/// passes, fails or stops early on a thrown error.
public enum TemporaryFolders {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var made: [URL] = []
    private static let removalAtExit: Void = { atexit { TemporaryFolders.removeAll() } }()

    /// A new empty folder named `prefix-UUID`.
    public static func make(_ prefix: String) throws -> URL {
        _ = removalAtExit
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        lock.withLock { made.append(url) }
        return url
    }

    /// Removes every folder made so far.
    public static func removeAll() {
        let urls = lock.withLock { () -> [URL] in
            defer { made.removeAll() }
            return made
        }
        for url in urls { try? FileManager.default.removeItem(at: url) }
    }
}
