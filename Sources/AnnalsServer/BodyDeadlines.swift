import Synchronization

/// Deadlines for request bodies, kept by one sweeper instead of one timer per request.
///
/// Each body used to race a `Task.sleep` of the body timeout in a task group. Cancelling a sleep
/// resumes its task but leaves its timer in libdispatch's heap until it fires, so at 5,000 requests/s
/// and a 30 s timeout the heap held 150,000 timers and fired 5,000 of them a second for nothing. Here a
/// request registers its collecting task with a deadline (a dictionary insert), removes it when its
/// body is in, and a single loop wakes a few times a second to cancel whatever is overdue. The loop
/// starts with the first pending body and ends when none is left, so nothing needs to run it (an
/// application that mounts ``AnnalsRoutes`` gets it too).
final class BodyDeadlines: Sendable {
    private struct Entry {
        let deadline: ContinuousClock.Instant
        let cancel: ObserverBox<Void>
    }

    private struct State {
        var nextID: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var sweeping = false
    }

    private let state = Mutex(State())
    /// How late past its deadline a body may be cancelled.
    let granularity: Duration
    /// Whether a pending body starts the sweeping loop (tests sweep by hand instead).
    let sweepsItself: Bool

    init(granularity: Duration = .milliseconds(250), sweepsItself: Bool = true) {
        self.granularity = granularity
        self.sweepsItself = sweepsItself
    }

    /// Number of bodies being collected (tests check that it returns to zero).
    var pending: Int { state.withLock { $0.entries.count } }

    /// The deadline passed before the operation ended (whatever the operation returned or threw).
    struct Expired: Error {}

    /// Runs `operation` in a task of its own, cancelled if it is not done by `deadline` (give or take
    /// the sweeper's granularity) or when the calling task is cancelled. Throws ``Expired`` when the
    /// sweeper cancelled it: a cancelled body stream may end early instead of throwing, so what the
    /// operation returned then is not trusted.
    func run<T: Sendable>(
        until deadline: ContinuousClock.Instant,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let task = Task { try await operation() }
        let (id, startsSweeper) = state.withLock { state in
            let id = state.nextID
            state.nextID &+= 1
            state.entries[id] = Entry(deadline: deadline, cancel: ObserverBox { task.cancel() })
            let starts = sweepsItself && !state.sweeping
            if starts { state.sweeping = true }
            return (id, starts)
        }
        if startsSweeper { Task { await sweepUntilIdle() } }
        let result = await withTaskCancellationHandler {
            await task.result
        } onCancel: {
            task.cancel()
        }
        let swept = state.withLock { $0.entries.removeValue(forKey: id) == nil }
        if swept { throw Expired() }
        return try result.get()
    }

    /// Cancels every task whose deadline is at or before `now`; returns how many.
    @discardableResult
    func sweep(now: ContinuousClock.Instant = .now) -> Int {
        let overdue = state.withLock { state in
            let ids = state.entries.compactMap { $0.value.deadline <= now ? $0.key : nil }
            return ids.compactMap { state.entries.removeValue(forKey: $0)?.cancel }
        }
        for cancel in overdue { cancel.call(()) }
        return overdue.count
    }

    /// Sweeps every `granularity` while any body is pending; the next pending body starts it again.
    private func sweepUntilIdle() async {
        while true {
            try? await Task.sleep(for: granularity)
            sweep()
            let idle = state.withLock { state in
                if state.entries.isEmpty { state.sweeping = false }
                return !state.sweeping
            }
            if idle { return }
        }
    }
}
