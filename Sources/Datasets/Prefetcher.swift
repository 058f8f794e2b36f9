import Foundation

/// Produces elements on a background thread ahead of their use, at most `capacity` ahead: the bounded prefetch queue
/// between prepared shards and the training step, so reading never waits on the step and memory holds at most
/// `capacity` batches.
///
/// Elements come out in the order they were produced. An error from `produce` is delivered by `next()` in its place,
/// after which nothing more is produced. Stopping (or releasing the prefetcher) ends the thread after the element it
/// is producing.
public final class Prefetcher<Element>: @unchecked Sendable {
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var queue: [Result<Element, Error>] = []
        var stopped = false
        var failed = false
    }

    /// Most elements produced ahead.
    public let capacity: Int
    private let state = State()

    /// Starts producing with `produce`, called repeatedly on one background thread.
    public init(capacity: Int, produce: @escaping () throws -> Element) {
        precondition(capacity >= 1, "Prefetcher: capacity must be positive")
        self.capacity = capacity
        let state = self.state
        let thread = Thread {
            while true {
                state.condition.lock()
                while state.queue.count >= capacity && !state.stopped { state.condition.wait() }
                let stop = state.stopped || state.failed
                state.condition.unlock()
                if stop { return }
                let result = Result { try produce() }
                state.condition.lock()
                state.queue.append(result)
                if case .failure = result { state.failed = true }
                state.condition.broadcast()
                state.condition.unlock()
            }
        }
        thread.name = "goku.prefetch"
        thread.start()
    }

    deinit { stop() }

    /// The next element, waiting for it if needed; rethrows a production error.
    public func next() throws -> Element {
        state.condition.lock()
        while state.queue.isEmpty { state.condition.wait() }
        let result = state.queue.removeFirst()
        state.condition.broadcast()
        state.condition.unlock()
        return try result.get()
    }

    /// Stops producing (the element in production is finished and dropped).
    public func stop() {
        state.condition.lock()
        state.stopped = true
        state.condition.broadcast()
        state.condition.unlock()
    }
}
