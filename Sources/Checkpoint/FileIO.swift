import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The message of the last system call's `errno`.
func systemError() -> String { String(cString: strerror(errno)) }

/// `write(2)`, named apart from Foundation's overloads.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.write(fd, buffer, count)
    #else
        return Darwin.write(fd, buffer, count)
    #endif
}

/// The bytes of a whole file: a read-only memory map, or an owned copy for data that never was a file.
///
/// Pages of a map are read on first touch, so opening a large checkpoint and reading one tensor only reads that
/// tensor's bytes. The map is private and read-only; if another process truncates the file while it is mapped,
/// touching the lost pages raises SIGBUS (the usual caveat of mmap, shared with the Rust and Python readers).
final class FileBytes: @unchecked Sendable {
    /// The path as given, used in error messages.
    let path: String
    /// The file's bytes (empty for an empty file).
    let bytes: UnsafeRawBufferPointer
    private let isMapped: Bool

    /// Maps `path`; throws `CheckpointError.io` when it cannot be opened or mapped, or is not a regular file.
    init(mapping path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.io(file: path, reason: "cannot open: \(systemError())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError.io(file: path, reason: "cannot stat: \(systemError())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError.io(file: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        isMapped = size > 0
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw CheckpointError.io(file: path, reason: "cannot map \(size) bytes: \(systemError())")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Copies `data`; `path` names it in error messages.
    init(copying data: [UInt8], path: String) {
        self.path = path
        isMapped = false
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
        data.withUnsafeBytes { buffer.copyMemory(from: $0) }
        bytes = UnsafeRawBufferPointer(start: buffer.baseAddress, count: data.count)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}

/// Writes a file so that readers see either the old file or the complete new one, never a partial write.
///
/// The content goes to a temporary file in the target's directory (same file system, so the final `rename(2)` is
/// atomic), is flushed with `fsync`, and is then renamed over the target; the directory is synced too so the rename
/// survives a crash. On any failure the temporary file is removed and the target is left untouched.
public enum AtomicFile {
    /// Creates or replaces `url` with `data`.
    /// - Throws: `CheckpointError.io` naming the file; the target is then untouched.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { writer in try data.withUnsafeBytes { try writer.write($0) } }
    }

    /// Creates or replaces `url` with what `body` writes.
    public static func write(to url: URL, _ body: (inout FileWriter) throws -> Void) throws {
        let target = url.path
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            .path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CheckpointError.io(
                file: target, reason: "cannot create a temporary file in \(directory): \(systemError())")
        }
        var writer = FileWriter(fd: fd, path: target)
        do {
            try body(&writer)
            try writer.flush()
            guard fsync(fd) == 0 else {
                throw CheckpointError.io(file: target, reason: "fsync failed: \(systemError())")
            }
            guard close(fd) == 0 else {
                writer.fd = -1
                throw CheckpointError.io(file: target, reason: "close failed: \(systemError())")
            }
            writer.fd = -1
            guard rename(temporary, target) == 0 else {
                throw CheckpointError.io(file: target, reason: "cannot rename the temporary file: \(systemError())")
            }
        } catch {
            if writer.fd >= 0 { close(writer.fd) }
            unlink(temporary)
            throw error
        }
        // Persist the directory entry; a failure here does not undo a completed rename, so it is not an error.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }
}

extension AtomicFile {
    /// Moves the complete folder `staging` to `target`, replacing a folder there in one step: a reader sees the old
    /// folder or the new one, never neither (Linux `renameat2` with `RENAME_EXCHANGE`, then the old one is removed).
    /// - Throws: `CheckpointError.io` naming the target.
    public static func replaceFolder(_ target: URL, with staging: URL) throws {
        if rename(staging.path, target.path) == 0 { return }
        guard errno == ENOTEMPTY || errno == EEXIST else {
            throw CheckpointError.io(file: target.path, reason: "cannot move \(staging.path) into place: \(systemError())")
        }
        // glibc's renameat2 is declared only under _GNU_SOURCE, which Swift's Glibc module does not set: look it up.
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else {
            // No exchange available: replace in two steps (a crash between them leaves only the staging folder).
            try FileManager.default.removeItem(at: target)
            try FileManager.default.moveItem(at: staging, to: target)
            return
        }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let exchange: UInt32 = 1 << 1  // RENAME_EXCHANGE
        guard renameat2(AT_FDCWD, staging.path, AT_FDCWD, target.path, exchange) == 0 else {
            throw CheckpointError.io(file: target.path, reason: "cannot exchange with \(staging.path): \(systemError())")
        }
        try? FileManager.default.removeItem(at: staging)  // now the old folder
    }
}

/// Buffered sequential writes to a file descriptor (owned by `AtomicFile`).
public struct FileWriter {
    fileprivate var fd: Int32
    /// The final file's path, for error messages.
    let path: String
    private var buffer: [UInt8] = []
    private static let bufferLimit = 1 << 20

    fileprivate init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(Self.bufferLimit)
    }

    /// Appends `bytes`.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count <= Self.bufferLimit {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        // Large blocks (tensor data) go straight to the file.
        try writeAll(bytes)
    }

    /// Appends `bytes`.
    mutating func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Writes out the buffered bytes.
    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.io(file: path, reason: "write failed: \(systemError())")
            }
            done += n
        }
    }
}
