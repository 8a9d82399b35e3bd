import Synchronization

/// Wakes subscribers when a store's head moves: the store calls ``publish(head:)`` after each commit,
/// subscriptions ``wait(untilHeadExceeds:)``.
///
/// Only the head (the number of committed events) is shared, never the events, so a slow subscriber
/// costs a writer nothing: subscribers read what they missed from the store itself.
public final class CommitNotifier: Sendable {
    private struct Waiter {
        var threshold: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var head: UInt64
        /// Counts changes that move no head but that a subscriber must see (a tombstone).
        var generation: UInt64 = 0
        var waiters: [Int: Waiter] = [:]
        var nextWaiterID = 0
        /// Whether a waiter for the head to pass `threshold`, or for a change after `generation`, is done.
        func isPast(_ threshold: UInt64, orChangeAfter generation: UInt64?) -> Bool {
            head > threshold || (generation.map { $0 != self.generation } ?? false)
        }
        /// Those in ``waitForWaiter()``: resumed when a subscriber starts waiting.
        var watchers: [Int: CheckedContinuation<Void, any Error>] = [:]
        var failure: EventStoreError?
    }

    private let state: Mutex<State>

    /// Creates a notifier whose head is `head` (the number of committed events).
    public init(head: UInt64 = 0) {
        state = Mutex(State(head: head))
    }

    /// The number of committed events, as last published.
    public var head: UInt64 { state.withLock { $0.head } }

    /// The head and the change generation, read together: a subscriber notes both before it reads,
    /// and waits with both, so a change between its read and its wait is never missed.
    public var snapshot: (head: UInt64, generation: UInt64) { state.withLock { ($0.head, $0.generation) } }

    /// Records a change that moves no head but that subscribers must see at once (a stream was
    /// tombstoned), and wakes every waiter: each reads again and finds what changed.
    public func publishChange() {
        let all: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.generation &+= 1
            let all = state.waiters.values.map(\.continuation)
            state.waiters = [:]
            return all
        }
        for continuation in all { continuation.resume() }
    }

    /// Whether a subscriber waits for the head to move now.
    public var hasWaiters: Bool { state.withLock { !$0.waiters.isEmpty } }

    /// Returns once a subscriber waits for the head to move (at once if one does): a store that learns of
    /// other processes' commits only needs to listen for them then.
    ///
    /// - Throws: `CancellationError` when the task is cancelled; the error given to ``finish(throwing:)``.
    public func waitForWaiter() async throws {
        let id: Int? = try state.withLock { state in
            if let failure = state.failure { throw failure }
            if !state.waiters.isEmpty { return nil }
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if let failure = state.failure { return .failure(failure) }
                    if !state.waiters.isEmpty { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.watchers[id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let continuation = state.withLock { $0.watchers.removeValue(forKey: id) }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Records a new head and wakes every waiter it satisfies. A head that goes back is ignored.
    public func publish(head: UInt64) {
        let ready: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            guard head > state.head else { return [] }
            state.head = head
            var ready: [CheckedContinuation<Void, any Error>] = []
            for (id, waiter) in state.waiters where waiter.threshold < head {
                ready.append(waiter.continuation)
                state.waiters[id] = nil
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Ends every wait, now and later, with `error` (the store closed or failed).
    public func finish(throwing error: EventStoreError) {
        let all: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.failure = error
            let all = state.waiters.values.map(\.continuation) + state.watchers.values
            state.waiters = [:]
            state.watchers = [:]
            return all
        }
        for continuation in all { continuation.resume(throwing: error) }
    }

    /// Returns once the head is greater than `threshold`, or, when `generation` is given, once a change
    /// (``publishChange()``) came after that generation.
    ///
    /// - Throws: `CancellationError` when the task is cancelled; the error given to ``finish(throwing:)``.
    public func wait(untilHeadExceeds threshold: UInt64, orChangeAfter generation: UInt64? = nil) async throws {
        let id: Int? = try state.withLock { state in
            if let failure = state.failure { throw failure }
            if state.isPast(threshold, orChangeAfter: generation) { return nil }
            let id = state.nextWaiterID
            state.nextWaiterID += 1
            return id
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (outcome, watchers): (Result<Void, any Error>?, [CheckedContinuation<Void, any Error>]) =
                    state.withLock { state in
                        if let failure = state.failure { return (.failure(failure), []) }
                        if state.isPast(threshold, orChangeAfter: generation) { return (.success(()), []) }
                        if Task.isCancelled { return (.failure(CancellationError()), []) }
                        state.waiters[id] = Waiter(threshold: threshold, continuation: continuation)
                        defer { state.watchers = [:] }
                        return (nil, Array(state.watchers.values))
                    }
                if let outcome { continuation.resume(with: outcome) }
                for watcher in watchers { watcher.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiters.removeValue(forKey: id)?.continuation }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
