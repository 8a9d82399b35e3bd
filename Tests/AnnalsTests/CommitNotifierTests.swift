import Annals
import Testing

@Suite("CommitNotifier")
struct CommitNotifierTests {
    @Test("a wait returns at once when the head is already past it", .timeLimit(.minutes(1)))
    func immediate() async throws {
        let notifier = CommitNotifier(head: 5)
        try await notifier.wait(untilHeadExceeds: 4)
    }

    @Test("a wait returns when a publish passes its threshold, not before", .timeLimit(.minutes(1)))
    func wakes() async throws {
        let notifier = CommitNotifier()
        let waiter = Task { try await notifier.wait(untilHeadExceeds: 2) }
        notifier.publish(head: 2)
        notifier.publish(head: 1)  // going back is ignored
        #expect(notifier.head == 2)
        notifier.publish(head: 3)
        try await waiter.value
    }

    @Test("cancelling a waiter ends its wait with CancellationError", .timeLimit(.minutes(1)))
    func cancellation() async throws {
        let notifier = CommitNotifier()
        let waiter = Task { try await notifier.wait(untilHeadExceeds: 10) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }

    @Test("finishing fails every present and future wait", .timeLimit(.minutes(1)))
    func finishing() async throws {
        let notifier = CommitNotifier()
        let waiter = Task { try await notifier.wait(untilHeadExceeds: 10) }
        notifier.finish(throwing: EventStoreError(.storeClosed, "closed"))
        await #expect(throws: EventStoreError.self) { try await waiter.value }
        await #expect(throws: EventStoreError.self) { try await notifier.wait(untilHeadExceeds: 0) }
    }

    @Test("waitForWaiter returns once a subscriber waits, and hasWaiters follows the waits", .timeLimit(.minutes(1)))
    func demand() async throws {
        let notifier = CommitNotifier()
        let watcher = Task { try await notifier.waitForWaiter() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!notifier.hasWaiters)
        let waiter = Task { try await notifier.wait(untilHeadExceeds: 0) }
        try await watcher.value
        #expect(notifier.hasWaiters)
        // Returns at once while one waits.
        try await notifier.waitForWaiter()
        notifier.publish(head: 1)
        try await waiter.value
        #expect(!notifier.hasWaiters)
    }

    @Test(
        "waitForWaiter ends with CancellationError when cancelled, and with the error of finish",
        .timeLimit(.minutes(1)))
    func demandEnds() async throws {
        let notifier = CommitNotifier()
        let cancelled = Task { try await notifier.waitForWaiter() }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        let finished = Task { try await notifier.waitForWaiter() }
        try await Task.sleep(for: .milliseconds(50))
        notifier.finish(throwing: EventStoreError(.storeClosed, "closed"))
        await #expect(throws: EventStoreError.self) { try await finished.value }
        await #expect(throws: EventStoreError.self) { try await notifier.waitForWaiter() }
    }
}
