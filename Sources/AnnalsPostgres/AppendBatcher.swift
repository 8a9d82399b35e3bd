import Annals
import Synchronization

/// One append waiting for its group's transaction.
final class PendingAppend: Sendable {
    let events: [EventData]
    let stream: StreamName
    let expected: ExpectedRevision

    /// What the waiting writer is to do next.
    enum Turn {
        /// Lead: commit groups (the batcher handed leadership over).
        case lead
        /// The append's outcome.
        case done(Result<AppendResult, EventStoreError>)
    }

    private struct State {
        var waiter: CheckedContinuation<Turn, Never>?
        var result: Result<AppendResult, EventStoreError>?
        var mustLead = false
    }

    private let state = Mutex(State())

    init(events: [EventData], stream: StreamName, expected: ExpectedRevision) {
        self.events = events
        self.stream = stream
        self.expected = expected
    }

    /// The outcome, once resolved.
    var outcome: Result<AppendResult, EventStoreError>? { state.withLock { $0.result } }

    var isResolved: Bool { outcome != nil }

    func resolve(_ result: Result<AppendResult, EventStoreError>) {
        let waiter = state.withLock { state in
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .done(result))
    }

    /// Hands the batcher's leadership to this append's writer.
    func promote() {
        let waiter: CheckedContinuation<Turn, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.mustLead = true
            return nil
        }
        waiter?.resume(returning: .lead)
    }

    /// The next thing to do: lead, if leadership was handed over (before anything else, so it is never
    /// lost), else the outcome once it is known.
    func turn() async -> Turn {
        await withCheckedContinuation { continuation in
            let immediate: Turn? = state.withLock { state in
                if state.mustLead {
                    state.mustLead = false
                    return .lead
                }
                if let result = state.result { return .done(result) }
                state.waiter = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }
}

/// Leader-based group commit, without timers or background tasks. The first append to find no leader
/// leads: it takes everything queued and commits it as one group, again until its own append is done,
/// then hands leadership to the writer of the oldest queued append (or gives it up when nothing is
/// queued). So no writer commits others' appends for longer than one group after its own.
///
/// One leader, not several: two leaders in flight split the writers into smaller groups, and the
/// counter row lock makes groups commit one after the other anyway (measured: 16 writers gained
/// nothing, see docs/postgres.md).
final class AppendBatcher: Sendable {
    private let state = Mutex<(queue: [PendingAppend], hasLeader: Bool, lastGroupWasShared: Bool)>(
        ([], false, false))

    /// Queues an append; returns true when the caller must lead (run ``takeAll()`` until nil).
    func submit(_ append: PendingAppend) -> Bool {
        state.withLock { state in
            state.queue.append(append)
            if state.hasLeader { return false }
            state.hasLeader = true
            return true
        }
    }

    /// Everything queued, or nil (and leadership given up) when nothing is.
    func takeAll() -> [PendingAppend]? {
        state.withLock { state in
            if state.queue.isEmpty {
                state.hasLeader = false
                return nil
            }
            state.lastGroupWasShared = state.queue.count > 1
            defer { state.queue = [] }
            return state.queue
        }
    }

    /// Whether the last group taken had more than one append: their writers may be about to append
    /// again, and a leader lets them queue first.
    var lastGroupWasShared: Bool { state.withLock { $0.lastGroupWasShared } }

    /// The leader leaves: leadership goes to the writer of the oldest queued append, or is given up.
    func handOff() {
        let next: PendingAppend? = state.withLock { state in
            if let first = state.queue.first { return first }
            state.hasLeader = false
            return nil
        }
        next?.promote()
    }
}
