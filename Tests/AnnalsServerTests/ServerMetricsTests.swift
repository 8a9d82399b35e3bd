import Annals
import Foundation
import Testing

@testable import AnnalsServer

@Suite("Server metrics")
struct ServerMetricsTests {
    @Test("append latency is the mean over the last whole second, nil for a second without appends")
    func latencyWindow() {
        let start = ContinuousClock.now
        let metrics = ServerMetrics(started: start)
        let event = [EventData(type: "T", data: Data("{}".utf8))]
        func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

        #expect(metrics.appendLatencyMicroseconds(now: at(100)) == nil, "nothing yet")
        metrics.append(events: event, seconds: 0.001, now: at(100))
        metrics.append(events: event, seconds: 0.003, now: at(900))
        #expect(metrics.appendLatencyMicroseconds(now: at(950)) == nil, "the current second is not over")
        #expect(metrics.appendLatencyMicroseconds(now: at(1_500)) == 2_000, "second 0: (1 ms + 3 ms) / 2")
        #expect(metrics.appendLatencyMicroseconds(now: at(2_100)) == nil, "second 1 had no append")

        metrics.append(events: event, seconds: 0.005, now: at(1_200))
        #expect(metrics.appendLatencyMicroseconds(now: at(1_300)) == 2_000, "second 0's mean, kept in second 1")
        #expect(metrics.appendLatencyMicroseconds(now: at(2_000)) == 5_000, "second 1: one append of 5 ms")
        metrics.append(events: event, seconds: 0.007, now: at(3_500))
        #expect(metrics.appendLatencyMicroseconds(now: at(3_600)) == nil, "second 2 had none, so none is carried")
        #expect(metrics.appendLatencyMicroseconds(now: at(4_000)) == 7_000)
        #expect(metrics.state.withLock { $0.appends } == 4)
    }
}
