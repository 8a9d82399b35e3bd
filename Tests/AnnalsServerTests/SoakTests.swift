import Annals
import AnnalsTestSupport
import Foundation
import Testing

@testable import AnnalsCLI

#if canImport(Glibc)
    import Glibc
#endif

/// A short soak of the real `annals serve`: the same scenario as `annals bench --server --soak`, so a
/// server that slows down or grows with every commit fails here, not only in a long bench run.
@Suite("Soak of annals serve (the binary)")
struct SoakTests {
    @Test(
        "appends for 30 s on four connections: the last tenth as fast and as small as the first",
        .timeLimit(.minutes(3))
    )
    func flatOverTime() async throws {
        let data = NSTemporaryDirectory() + "annals-soak-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        // A small index budget and memtable, so the index flushes many runs within the run: its memory
        // must stay inside the budget however many it writes.
        let (child, url, printed) = try await Child.serve(
            data: data, ["--index-memory", "16MiB", "--index-memtable-events", "4096"])
        let token = try #require(printed)
        let result = try await SoakScenario(seconds: 30, connections: 4).run(
            url: url, token: token, serverPID: child.pid)
        child.signal(SIGTERM)
        #expect(try await child.exit() == 0)

        let summary = "\(result)"
        #expect(result.failures == 0, "\(summary)")
        // Enough answers in each tenth for its figures to mean something, even with every other test
        // running beside this one. Four connections, not one: on one, each answer waits for its own
        // flush, and with the PostgreSQL and kill tests flushing beside it a whole-suite run saw 4
        // answers a second (p50 173 ms); four share each flush (group commit).
        #expect(result.requests > 200, "\(summary)")
        // Other tests share the two cores while this runs, so wall-clock throughput is held to a loose
        // bound; the server's own CPU per request, which contention hardly moves, to a tighter one.
        #expect(result.throughputRatio >= 0.6, "\(summary)")
        let cpuFirst = try #require(result.first.serverCPUMicrosecondsPerRequest)
        let cpuLast = try #require(result.last.serverCPUMicrosecondsPerRequest)
        #expect(cpuLast <= cpuFirst * 1.5, "\(summary)")
        let memory = try #require(result.memoryRatio)
        #expect(memory <= 1.1, "\(summary)")
    }
}
