import PostgresNIO
import Synchronization

/// A connection that ``PostgresEventStore/run()`` keeps leased for group commits, so that a commit
/// does not lease one from the pool each time (measured: about 15 % of the rate of one-event appends
/// awaited one by one).
///
/// A commit borrows it when it is free (else it uses the pool as before) and gives it back. A
/// commit that fails gives it back as broken: the holder then returns it to the pool and leases
/// another. When the holder is cancelled it waits for a borrowed connection to come back first.
final class CommitConnection: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var isBorrowed = false
        /// Broken, or its holder cancelled: lent no more, and the holder returns once nobody has it.
        var isOver = false
        var holder: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// The held connection, if there is one, nobody else has it and it is open. One found closed (the
    /// server restarted, say) is handed back to be replaced, and the commit uses the pool.
    func borrow() -> PostgresConnection? {
        var lent: PostgresConnection?
        update { state in
            guard let connection = state.connection, !state.isBorrowed, !state.isOver else { return }
            if connection.isClosed {
                state.isOver = true
            } else {
                state.isBorrowed = true
                lent = connection
            }
        }
        return lent
    }

    /// Gives back what ``borrow()`` returned; `broken` after any failure on it.
    func giveBack(broken: Bool) {
        update { state in
            state.isBorrowed = false
            if broken { state.isOver = true }
        }
    }

    /// Offers `connection` for commits until it breaks or the calling task is cancelled (and it is
    /// not borrowed then), and returns.
    func hold(_ connection: PostgresConnection) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state in
                    state.connection = connection
                    state.isOver = false
                    state.isBorrowed = false
                    // Cancelled before this: the cancellation handler has already run.
                    if Task.isCancelled { return true }
                    state.holder = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            update { $0.isOver = true }
        }
        state.withLock { $0.connection = nil }
    }

    /// Applies `change`, then wakes the holder if the offer is over and nobody has the connection.
    private func update(_ change: (inout State) -> Void) {
        let holder = state.withLock { state -> CheckedContinuation<Void, Never>? in
            change(&state)
            guard state.isOver, !state.isBorrowed else { return nil }
            defer { state.holder = nil }
            return state.holder
        }
        holder?.resume()
    }
}
