import Annals
import Synchronization

/// Runs `operation` in its own task and returns its result, or throws `unavailable` once `timeout` has
/// passed (never, for nil). On timeout (or cancellation of the caller) the operation is cancelled but
/// not awaited: a driver call that ignores cancellation cannot hold the caller. (postgres-nio was seen
/// to leave the first connection lease after a server restart waiting forever, cancelled or not.)
func withDeadline<T: Sendable>(
    _ timeout: Duration?,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = Outcome<T>()
    let work = Task { outcome.settle(await Result(catching: operation)) }
    let timer = Task {
        guard let timeout, (try? await Task.sleep(for: timeout)) != nil else { return }
        work.cancel()
        outcome.settle(.failure(deadlinePassed(timeout)))
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { outcome.wait($0) }
    } onCancel: {
        work.cancel()
        outcome.settle(.failure(CancellationError()))
    }
}

/// The error of an operation that took longer than `timeout`.
func deadlinePassed(_ timeout: Duration) -> EventStoreError {
    EventStoreError(
        .unavailable, "PostgreSQL did not answer within \(timeout) (a write may or may not have taken effect).")
}

/// The first result settled wins; the waiter gets it whether it arrives before or after.
private final class Outcome<T: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<T, any Error>)
        case settled(Result<T, any Error>)
        case done
    }
    private let state = Mutex(State.empty)

    func settle(_ result: Result<T, any Error>) {
        let waiter: CheckedContinuation<T, any Error>? = state.withLock { state in
            switch state {
            case .empty:
                state = .settled(result)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .settled, .done:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLock { state in
            if case .settled(let result) = state {
                state = .done
                return result
            }
            state = .waiting(continuation)
            return nil
        }
        if let ready { continuation.resume(with: ready) }
    }
}

extension Result where Failure == any Error {
    fileprivate init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
