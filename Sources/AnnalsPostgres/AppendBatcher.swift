import Annals
import Synchronization

/// One append waiting for its group's transaction.
final class PendingAppend: Sendable {
    let events: [EventData]
    let stream: StreamName
    let expected: ExpectedRevision

    private struct State {
        var waiter: CheckedContinuation<AppendResult, any Error>?
        var result: Result<AppendResult, EventStoreError>?
    }

    private let state = Mutex(State())

    init(events: [EventData], stream: StreamName, expected: ExpectedRevision) {
        self.events = events
        self.stream = stream
        self.expected = expected
    }

    func resolve(_ result: Result<AppendResult, EventStoreError>) {
        let waiter = state.withLock { state in
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
    }

    /// The result, once the group's leader knows it.
    func result() async throws -> AppendResult {
        try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<AppendResult, any Error>? = state.withLock { state in
                if let result = state.result { return result.mapError { $0 as any Error } }
                state.waiter = continuation
                return nil
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }
}

/// Leader-based group commit: the first append to find the batcher idle becomes the leader and commits
/// every queued append in one transaction, again and again until the queue is empty; the others only
/// wait for their result. No timers and no background task.
final class AppendBatcher: Sendable {
    private let state = Mutex<(queue: [PendingAppend], isRunning: Bool)>(([], false))

    /// Queues an append; returns true when the caller must lead (run ``takeAll()`` until nil).
    func submit(_ append: PendingAppend) -> Bool {
        state.withLock { state in
            state.queue.append(append)
            if state.isRunning { return false }
            state.isRunning = true
            return true
        }
    }

    /// Everything queued, or nil (and leadership given up) when nothing is.
    func takeAll() -> [PendingAppend]? {
        state.withLock { state in
            if state.queue.isEmpty {
                state.isRunning = false
                return nil
            }
            defer { state.queue = [] }
            return state.queue
        }
    }
}
