import Annals
import Synchronization

/// One append waiting for its group's transaction.
final class PendingAppend: Sendable {
    let events: [EventData]
    let stream: StreamName
    let expected: ExpectedRevision

    private enum State {
        case waiting([CheckedContinuation<AppendResult, any Error>])
        case done(Result<AppendResult, EventStoreError>)
    }

    private let state = Mutex(State.waiting([]))

    init(events: [EventData], stream: StreamName, expected: ExpectedRevision) {
        self.events = events
        self.stream = stream
        self.expected = expected
    }

    func resolve(_ result: Result<AppendResult, EventStoreError>) {
        let waiting: [CheckedContinuation<AppendResult, any Error>] = state.withLock { state in
            guard case .waiting(let continuations) = state else { return [] }
            state = .done(result)
            return continuations
        }
        for continuation in waiting { continuation.resume(with: result.mapError { $0 as any Error }) }
    }

    func value() async throws -> AppendResult {
        try await withCheckedThrowingContinuation { continuation in
            let done: Result<AppendResult, EventStoreError>? = state.withLock { state in
                switch state {
                case .waiting(var continuations):
                    continuations.append(continuation)
                    state = .waiting(continuations)
                    return nil
                case .done(let result):
                    return result
                }
            }
            if let done { continuation.resume(with: done.mapError { $0 as any Error }) }
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
