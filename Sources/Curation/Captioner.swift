import Foundation
import VideoIO

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Captions clips through an OpenAI-compatible `/chat/completions` API (paper §4.3): keyframes captioned by one model,
/// the clip's frames in order by another, both merged and refined by an LLM, then the motion score appended.
/// Images go as base64 JPEG data URLs. Requests time out, are retried with exponential back-off on transport errors,
/// HTTP 429 and 5xx (honouring Retry-After), and are spaced by a rate limit shared by every worker.
public final class Captioner: @unchecked Sendable {
    /// Endpoint, models, prompts, timeout, retries and rate.
    public let config: CurationConfig
    private let baseURL: URL
    private let session: URLSession
    private let apiKey: String?
    private let lock = NSLock()
    private var nextSlot = Date.distantPast
    /// Requests sent (including retries), for tests and logs.
    public private(set) var requestCount = 0

    /// A captioner for `config.captionEndpoint` (throws if it is nil or not a URL).
    public init(config: CurationConfig) throws {
        guard let endpoint = config.captionEndpoint, let url = URL(string: endpoint) else {
            throw CurationError.invalidConfig(field: "captionEndpoint", reason: "is not set")
        }
        self.config = config
        baseURL = url
        let sessionConfig = URLSessionConfiguration.ephemeral
        sessionConfig.timeoutIntervalForRequest = config.requestTimeout
        sessionConfig.timeoutIntervalForResource = config.requestTimeout
        session = URLSession(configuration: sessionConfig)
        apiKey = ProcessInfo.processInfo.environment[config.captionAPIKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The caption of a clip: refined from the keyframe and clip captions, with "Motion score: x.xx." appended.
    /// - Parameters:
    ///   - keyframes: the clip's keyframes (1 per second).
    ///   - clipFrames: frames evenly spread over the clip, in order.
    ///   - motion: the clip's motion score, or nil when it was not measured.
    public func caption(keyframes: [RGBFrame], clipFrames: [RGBFrame], motion: Double?) throws -> String {
        let keyframeCaption = try complete(
            model: config.keyframeModel, prompt: config.keyframePrompt, images: keyframes)
        let clipCaption = try complete(model: config.clipModel, prompt: config.clipPrompt, images: clipFrames)
        let prompt = config.refinePrompt.replacingOccurrences(of: "{keyframes}", with: keyframeCaption)
            .replacingOccurrences(of: "{clip}", with: clipCaption)
        var caption = try complete(model: config.refineModel, prompt: prompt, images: [])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if let motion { caption += (caption.isEmpty ? "" : " ") + String(format: "Motion score: %.2f.", motion) }
        return caption
    }

    /// One chat completion: a user message with the prompt and the images; returns the first choice's content.
    public func complete(model: String, prompt: String, images: [RGBFrame]) throws -> String {
        var content: [[String: Any]] = [["type": "text", "text": prompt]]
        for image in images {
            let jpeg = try ImageCodec.encode(image, as: .jpeg(quality: 4))
            content.append([
                "type": "image_url", "image_url": ["url": "data:image/jpeg;base64," + jpeg.base64EncodedString()],
            ])
        }
        let body: [String: Any] = ["model": model, "messages": [["role": "user", "content": content]]]
        var request = URLRequest(url: baseURL.appendingPathComponent("chat/completions"))
        request.httpMethod = "POST"
        request.timeoutInterval = config.requestTimeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)

        var lastFailure = ""
        for attempt in 0...config.maximumRetries {
            waitForSlot()
            var delay = config.retryDelay * pow(2, Double(attempt))
            switch send(request) {
            case let .success((status, data, retryAfter)):
                if status == 200 {
                    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                        let choices = json["choices"] as? [[String: Any]],
                        let message = choices.first?["message"] as? [String: Any],
                        let text = message["content"] as? String
                    else {
                        throw CurationError.captioning(reason: "\(model): response without choices[0].message.content")
                    }
                    return text
                }
                lastFailure = "HTTP \(status): \(String(decoding: data.prefix(200), as: UTF8.self))"
                guard status == 429 || status >= 500 else {
                    throw CurationError.captioning(reason: "\(model): \(lastFailure)")
                }
                if let retryAfter { delay = max(delay, retryAfter) }
            case let .failure(error):
                lastFailure = error.localizedDescription
            }
            if attempt < config.maximumRetries { Thread.sleep(forTimeInterval: delay) }
        }
        throw CurationError.captioning(
            reason: "\(model): gave up after \(config.maximumRetries + 1) attempts: \(lastFailure)")
    }

    /// Blocks until the shared rate limit allows another request.
    private func waitForSlot() {
        let interval = 60 / config.requestsPerMinute
        lock.lock()
        let now = Date()
        let slot = max(now, nextSlot)
        nextSlot = slot.addingTimeInterval(interval)
        requestCount += 1
        lock.unlock()
        let wait = slot.timeIntervalSince(now)
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }

    private func send(_ request: URLRequest) -> Result<(Int, Data, Double?), Error> {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<(Int, Data, Double?), Error> = .failure(URLError(.unknown))
        let task = session.dataTask(with: request) { data, response, error in
            if let error {
                result = .failure(error)
            } else if let http = response as? HTTPURLResponse {
                let retryAfter = (http.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init)
                result = .success((http.statusCode, data ?? Data(), retryAfter))
            }
            done.signal()
        }
        task.resume()
        done.wait()
        return result
    }
}
