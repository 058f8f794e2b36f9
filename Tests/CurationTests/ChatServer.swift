import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A tiny OpenAI-compatible chat server on 127.0.0.1 for tests: answers `POST …/chat/completions` with a fixed
/// caption (the first `failuresFirst` requests get HTTP 503), records the request bodies, and stops itself after
/// `lifetime` seconds or on `stop()`.
final class ChatServer: @unchecked Sendable {
    let port: UInt16
    private let socketFD: Int32
    private let lock = NSLock()
    private var bodies: [Data] = []
    private var remainingFailures: Int
    private let reply: String
    private var stopped = false

    init(reply: String, failuresFirst: Int = 0, lifetime: TimeInterval = 120) throws {
        self.reply = reply
        remainingFailures = failuresFirst
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socketFD = socketFD
        var yes: Int32 = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(socketFD, 16) == 0 else { throw NSError(domain: "ChatServer", code: 1) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        _ = bound
        Thread.detachNewThread { [self] in serve() }
        DispatchQueue.global().asyncAfter(deadline: .now() + lifetime) { [self] in stop() }
    }

    var endpoint: String { "http://127.0.0.1:\(port)/v1" }

    /// Request bodies received so far.
    var requests: [Data] { lock.lock(); defer { lock.unlock() }; return bodies }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.unlock()
        if !wasStopped {
            shutdown(socketFD, Int32(SHUT_RDWR))
            close(socketFD)
        }
    }

    private func serve() {
        while true {
            let client = accept(socketFD, nil, nil)
            if client < 0 { return }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Range<Data.Index>? = nil
        var contentLength = 0
        while true {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { return }
            received.append(contentsOf: buffer[0..<n])
            if headerEnd == nil, let end = received.range(of: Data("\r\n\r\n".utf8)) {
                headerEnd = end
                let header = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                for line in header.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength =
                        Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let end = headerEnd, received.count - end.upperBound >= contentLength { break }
        }
        let body = received[headerEnd!.upperBound...]
        lock.lock()
        bodies.append(Data(body))
        let fail = remainingFailures > 0
        if fail { remainingFailures -= 1 }
        lock.unlock()
        let payload: Data
        let status: String
        if fail {
            status = "503 Service Unavailable"
            payload = Data("{\"error\":\"busy\"}".utf8)
        } else {
            status = "200 OK"
            payload = try! JSONSerialization.data(withJSONObject: [
                "choices": [["index": 0, "message": ["role": "assistant", "content": reply]]]
            ])
        }
        var response = Data(
            "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
                .utf8)
        response.append(payload)
        _ = response.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
    }
}
