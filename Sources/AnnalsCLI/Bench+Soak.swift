import Annals
import Foundation

#if Client
    import AnnalsClient
    import AsyncHTTPClient
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// A long run of appends over HTTP against a running server, to see whether it slows down or grows
/// with time: throughput, latency and the server's CPU per request in the first and the last tenth of
/// the run, and its resident memory at the end of each.
///
/// Each connection appends one event at a time (128 bytes) to streams of its own, a new stream after
/// every hundred events (as aggregates come and go, so the store's stream count grows through the run),
/// through ``AnnalsClient/RemoteEventStore`` on one kept-alive connection pool. Beside them an
/// operator does, once a second, what the admin page and a monitoring system do: opens a subscription
/// and waits for its first live event, then reads `/stats`, a page of `/streams`, `/health` and
/// `/metrics`. So the paths that live as long as the server (subscription slots, the token cache, the
/// metrics' label sets, the admin page's polling) are measured first against last too.
struct SoakScenario {
    var seconds: Double
    var connections: Int

    /// What one tenth of the run measured.
    struct Tenth: Codable, Sendable {
        var requestsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
        /// The server's resident memory at the end of this tenth (nil when the server is not a process
        /// whose `/proc` entry this machine can read).
        var serverResidentBytes: Int64?
        /// The server's user and system CPU time over this tenth, per request answered.
        var serverCPUMicrosecondsPerRequest: Double?
        /// The median time of the operator's round (subscribe and wait for an event, then /stats,
        /// /streams, /health and /metrics) in this tenth.
        var operatorRoundMilliseconds: Double?
        /// The size of the `/metrics` answer at the end of this tenth.
        var metricsBytes: Int?
    }

    struct Result: Codable, Sendable {
        var seconds: Double
        var connections: Int
        var requests: Int
        var failures: Int
        /// Subscriptions the operator opened and closed.
        var subscriptionsOpened: Int
        /// `annals_subscriptions_live` once the run is over: 0 unless a closed subscription leaked.
        var liveSubscriptionsAtEnd: Int?
        var first: Tenth
        var last: Tenth

        /// The last tenth's throughput over the first's (target ≥ 0.9).
        var throughputRatio: Double {
            first.requestsPerSecond > 0 ? last.requestsPerSecond / first.requestsPerSecond : 0
        }

        /// The server's memory at the end over its memory at the end of the first tenth (target ≤ 1.1).
        var memoryRatio: Double? {
            guard let first = first.serverResidentBytes, let last = last.serverResidentBytes, first > 0 else {
                return nil
            }
            return Double(last) / Double(first)
        }

        /// The server's memory growth after the first tenth per event appended meanwhile: a store that
        /// indexes every event in memory (the file store: about 50 bytes each, docs/performance.md)
        /// grows by that much by design; more than that is a leak.
        var residentGrowthPerAppend: Double? {
            guard let first = first.serverResidentBytes, let last = last.serverResidentBytes else { return nil }
            let appends = Double(requests) - self.first.requestsPerSecond * seconds / 10
            return appends > 0 ? Double(last - first) / appends : nil
        }
    }

    /// One request: when it was answered (seconds from the start) and how long it took.
    private struct Sample {
        var answered: Float
        var microseconds: Float
    }

    #if Client
        /// Runs against the server at `url`; `serverPID` names its process, for memory and CPU.
        ///
        /// The appenders' pool holds `connections` connections; the operator has a client of its own, so
        /// its subscription never takes a connection the appenders wait for (with one connection, the
        /// subscription waited for an append that waited for the subscription's connection).
        func run(url: String, token: String, serverPID: pid_t?) async throws -> Result {
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let operatorClient = HTTPClient(eventLoopGroupProvider: .singleton)
            let outcome: Swift.Result<SoakScenario.Result, any Error>
            do {
                outcome = .success(
                    try await run(
                        on: try RemoteEventStore(url: url, token: token, client: client),
                        admin: Operator(client: operatorClient, url: url, token: token), serverPID: serverPID))
            } catch {
                outcome = .failure(error)
            }
            try? await operatorClient.shutdown()
            try? await client.shutdown()
            return try outcome.get()
        }

        private func run(on store: RemoteEventStore, admin: Operator, serverPID: pid_t?) async throws -> Result {
            let clock = ContinuousClock()
            let tenth = seconds / 10
            let start = clock.now
            let end = start.advanced(by: .seconds(seconds))
            // The server's CPU time and memory at the four edges of the two tenths measured.
            let edges = [0, tenth, seconds - tenth, seconds]
            async let usage: [ProcessUsage?] = {
                var readings: [ProcessUsage?] = []
                for edge in edges {
                    try? await clock.sleep(until: start.advanced(by: .seconds(edge)))
                    readings.append(serverPID.flatMap(ProcessUsage.of))
                }
                return readings
            }()
            async let operatorRounds = admin.run(start: start, until: end, tenth: tenth)
            let (samples, failures) = try await withThrowingTaskGroup(of: ([Sample], Int).self) { group in
                for connection in 0..<connections {
                    group.addTask {
                        var samples: [Sample] = []
                        samples.reserveCapacity(Int(min(seconds, 3_600) * 500))
                        var failures = 0
                        var failuresInARow = 0
                        var count = 0
                        while clock.now < end {
                            let stream = try StreamName("soak-\(connection)-\(count / 100)")
                            count += 1
                            let began = clock.now
                            do {
                                _ = try await store.append([BenchScenarios.event()], to: stream, expecting: .any)
                                failuresInARow = 0
                            } catch {
                                failures += 1
                                failuresInARow += 1
                                if failuresInARow >= 100 { throw error }
                                continue
                            }
                            let answered = clock.now
                            samples.append(
                                Sample(
                                    answered: Float(start.duration(to: answered).seconds),
                                    microseconds: Float(began.duration(to: answered).microseconds)))
                        }
                        return (samples, failures)
                    }
                }
                return try await group.reduce(into: ([Sample](), 0)) {
                    $0.0 += $1.0
                    $0.1 += $1.1
                }
            }
            let readings = await usage
            let rounds = try await operatorRounds
            let liveAtEnd = try await admin.liveSubscriptions()

            func measure(_ range: Range<Double>, from before: ProcessUsage?, to after: ProcessUsage?) -> Tenth {
                let inside = samples.filter { range.contains(Double($0.answered)) }
                let latencies = inside.map { Double($0.microseconds) }
                var cpu: Double?
                if let before, let after, !inside.isEmpty {
                    cpu = (after.cpuSeconds - before.cpuSeconds) * 1e6 / Double(inside.count)
                }
                let operatorRounds = rounds.rounds.filter { range.contains($0.started) }.map(\.milliseconds)
                return Tenth(
                    requestsPerSecond: Double(inside.count) / tenth,
                    p50Microseconds: percentile(latencies, 0.5),
                    p99Microseconds: percentile(latencies, 0.99),
                    serverResidentBytes: after?.residentBytes,
                    serverCPUMicrosecondsPerRequest: cpu,
                    operatorRoundMilliseconds: operatorRounds.isEmpty ? nil : percentile(operatorRounds, 0.5),
                    metricsBytes: range.lowerBound == 0 ? rounds.metricsBytesFirst : rounds.metricsBytesLast)
            }
            return Result(
                seconds: seconds, connections: connections, requests: samples.count, failures: failures,
                subscriptionsOpened: rounds.rounds.count, liveSubscriptionsAtEnd: liveAtEnd,
                first: measure(0..<tenth, from: readings[0], to: readings[1]),
                last: measure((seconds - tenth)..<(seconds + 1), from: readings[2], to: readings[3]))
        }
    #endif
}

#if Client
    /// The soak's operator: once a second, a subscription that waits for one live event and is closed, then
    /// the reads the admin page polls (`/stats`, `/streams`) and a monitoring system's (`/health`, `/metrics`).
    struct Operator: Sendable {
        let client: HTTPClient
        let url: String
        let token: String

        struct Round: Sendable {
            /// Seconds from the start of the soak.
            var started: Double
            var milliseconds: Double
        }

        struct Rounds: Sendable {
            var rounds: [Round] = []
            var metricsBytesFirst: Int?
            var metricsBytesLast: Int?
        }

        func run(start: ContinuousClock.Instant, until end: ContinuousClock.Instant, tenth: Double) async throws
            -> Rounds
        {
            let store = try RemoteEventStore(url: url, token: token, client: client)
            let clock = ContinuousClock()
            var result = Rounds()
            var next = start
            while clock.now < end {
                try? await clock.sleep(until: next)
                next = next.advanced(by: .seconds(1))
                let began = clock.now
                guard began < end else { break }
                // Opened, fed one live event by the appenders, and closed. The appenders stop at `end`: a
                // round begun just before it waits no longer than a few seconds after it for that event.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var iterator = store.subscribe(to: .category("soak"), from: .end).makeAsyncIterator()
                        _ = try await iterator.next()
                    }
                    group.addTask { try await clock.sleep(until: end.advanced(by: .seconds(5))) }
                    try await group.next()
                    group.cancelAll()
                }
                for path in ["/stats", "/streams?limit=500", "/health"] { _ = try await get(path) }
                let metrics = try await get("/metrics")
                let started = start.duration(to: began).seconds
                result.rounds.append(
                    Round(started: started, milliseconds: began.duration(to: clock.now).seconds * 1000))
                if started < tenth { result.metricsBytesFirst = metrics.count }
                result.metricsBytesLast = metrics.count
            }
            return result
        }

        /// `annals_subscriptions_live` from `/metrics`, once every subscription the operator closed has had a
        /// moment to end on the server (a closed connection is noticed asynchronously).
        func liveSubscriptions() async throws -> Int? {
            var live: Int?
            for _ in 0..<50 {
                let metrics = String(decoding: try await get("/metrics"), as: UTF8.self)
                live = metrics.split(separator: "\n").first { $0.hasPrefix("annals_subscriptions_live ") }
                    .flatMap { Int($0.split(separator: " ").last ?? "") }
                if live == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            return live
        }

        private func get(_ path: String) async throws -> [UInt8] {
            var request = HTTPClientRequest(url: url + path)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            guard response.status == .ok else {
                throw EventStoreError(.unavailable, "GET \(path) answered \(response.status.code).")
            }
            return Array(body.readableBytesView)
        }
    }
#endif

/// A process's CPU time and resident memory, read from `/proc`.
struct ProcessUsage: Sendable {
    var cpuSeconds: Double
    var residentBytes: Int64

    /// Nil when `/proc/<pid>` cannot be read (the process is gone, or this is not Linux).
    static func of(_ pid: pid_t) -> ProcessUsage? {
        of(procEntry: String(pid))
    }

    /// This process.
    static var current: ProcessUsage? { of(procEntry: "self") }

    private static func of(procEntry: String) -> ProcessUsage? {
        guard let stat = try? String(contentsOfFile: "/proc/\(procEntry)/stat", encoding: .utf8),
            let statm = try? String(contentsOfFile: "/proc/\(procEntry)/statm", encoding: .utf8),
            let closing = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name (which may hold spaces): state, ppid, …; utime and stime are the
        // 14th and 15th fields of the line, the 12th and 13th after the name.
        let fields = stat[stat.index(after: closing)...].split(separator: " ")
        let pages = statm.split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]), pages.count > 1,
            let resident = Int64(pages[1])
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ProcessUsage(
            cpuSeconds: (user + system) / max(ticks, 1), residentBytes: resident * Int64(sysconf(Int32(_SC_PAGESIZE))))
    }
}
