import Foundation
import Testing

@testable import AnnalsServer

@Suite("Body deadlines")
struct BodyDeadlinesTests {
    @Test("a body done before its deadline returns its value and leaves nothing registered")
    func inTime() async throws {
        let deadlines = BodyDeadlines(sweepsItself: false)
        let value = try await deadlines.run(until: .now + .seconds(30)) { 42 }
        #expect(value == 42)
        #expect(deadlines.pending == 0)
        #expect(deadlines.sweep(now: .now + .seconds(60)) == 0)
    }

    @Test(
        "an overdue body is cancelled by the sweep and answers Expired, even if it ends quietly",
        .timeLimit(.minutes(1)))
    func overdue() async throws {
        let deadlines = BodyDeadlines(sweepsItself: false)
        let started = ContinuousClock.now
        async let outcome: Result<Int, any Error> = {
            do {
                // Ends with a value when cancelled, as a cancelled body stream may end early.
                return .success(
                    try await deadlines.run(until: started + .milliseconds(50)) {
                        try? await Task.sleep(for: .seconds(60))
                        return 7
                    })
            } catch {
                return .failure(error)
            }
        }()
        while deadlines.pending == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(deadlines.sweep(now: started) == 0, "not overdue yet")
        #expect(deadlines.sweep(now: started + .milliseconds(50)) == 1)
        let result = await outcome
        #expect(throws: BodyDeadlines.Expired.self) { try result.get() }
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(deadlines.pending == 0)
    }

    @Test("thousands of bodies leave no deadline behind", .timeLimit(.minutes(1)))
    func noGrowth() async throws {
        let deadlines = BodyDeadlines(sweepsItself: false)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<2_000 {
                group.addTask { try await deadlines.run(until: .now + .seconds(30)) { index } }
            }
            var sum = 0
            for try await value in group { sum += value }
            #expect(sum == 1_999 * 2_000 / 2)
        }
        #expect(deadlines.pending == 0)
    }
}
