import Annals
import AnnalsFileStore
import ArgumentParser
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension AnnalsCommand {
    /// `annals bench`: the performance scenarios of DESIGN §9, each durable figure beside a raw flush
    /// probe measured in the same run.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the store against a raw flush probe run in the same invocation.",
            discussion: """
                The machine's flush latency changes by itself, so every durable figure is also reported as \
                a ratio to the probe (write + fdatasync of a small record in a loop), which runs before and \
                after the scenarios; single appends are measured in slices alternating with slices of the \
                probe, and against those.
                """
        )

        @Option(help: "The store to measure: file, memory or postgres.")
        var store: String = "file"

        @Option(name: .long, help: "The data directory (a temporary one by default; it must not exist yet).")
        var data: String?

        @Option(name: .long, help: "The PostgreSQL server for --store postgres (or ANNALS_POSTGRES_URL).")
        var postgres: String?

        @Option(help: "Seconds each timed scenario runs.")
        var seconds: Double = 2

        @Option(help: "Events in the store opened for the recovery scenario.")
        var recoveryEvents: Int = 200_000

        @Flag(
            name: .long,
            help:
                "Also measure over HTTP: `annals serve` (this binary, as a child process) on a file store, and the Swift client."
        )
        var server = false

        @Option(
            name: .long,
            help: ArgumentHelp(
                "With --server: also run a soak of this many seconds, one event per request.",
                discussion:
                    "Reports throughput and p99 in the first and the last tenth of the run, and the server's memory at the end of each.",
                valueName: "seconds"))
        var soak: Double?

        @Option(name: .long, help: "Connections the soak appends on at once.")
        var soakConnections: Int = 1

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() async throws {
            guard ["file", "memory", "postgres"].contains(store) else {
                throw ValidationError("--store must be file, memory or postgres.")
            }
            if store == "postgres" {
                #if Postgres
                    try await runPostgres()
                    return
                #else
                    throw Traits.missing("PostgreSQL", trait: "Postgres")
                #endif
            }
            guard seconds > 0, seconds <= 600, recoveryEvents >= 0 else {
                throw ValidationError("--seconds must be in (0, 600] and --recovery-events not negative.")
            }
            if let soak {
                guard server else { throw ValidationError("--soak runs over HTTP: give --server too.") }
                guard soak >= 10, soak <= 7 * 86_400 else {
                    throw ValidationError("--soak must be from 10 seconds to a week.")
                }
            }
            guard (1...1_024).contains(soakConnections) else {
                throw ValidationError("--soak-connections must be from 1 to 1024.")
            }
            let temporary = data == nil
            let directory = data ?? NSTemporaryDirectory() + "annals-bench-\(UUID().uuidString.prefix(8))"
            if FileManager.default.fileExists(atPath: directory) {
                throw ValidationError("\(directory) exists; bench needs a fresh directory.")
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { if temporary { try? FileManager.default.removeItem(atPath: directory) } }

            var results = BenchResults(store: store, directory: directory, seconds: seconds)
            results.probeBefore = try FlushProbe.run(directory: directory, seconds: min(seconds, 2))
            let scenarios = BenchScenarios(seconds: seconds)
            if store == "file" {
                try await FileEventStore.withStore(at: directory + "/store", configuration: scenarios.quiet) { store in
                    try await scenarios.run(on: store, into: &results) {
                        try FlushProbe.run(directory: directory, seconds: $0)
                    }
                }
                results.recovery = try await scenarios.recovery(
                    directory: directory + "/recovery", events: recoveryEvents)
            } else {
                try await scenarios.run(on: try InMemoryEventStore(), into: &results) {
                    try FlushProbe.run(directory: directory, seconds: $0)
                }
            }
            if server {
                #if Client
                    results.http = try await scenarios.overHTTP(
                        directory: directory + "/server",
                        soak: soak.map { SoakScenario(seconds: $0, connections: soakConnections) })
                #else
                    throw Traits.missing("the HTTP client (bench --server)", trait: "Client")
                #endif
            }
            results.probeAfter = try FlushProbe.run(directory: directory, seconds: min(seconds, 2))
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                print(results.table())
            }
        }
    }
}

/// Writes and flushes a small record in a loop: the rate any durable store is bounded by.
enum FlushProbe {
    struct Result: Codable {
        var flushesPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
    }

    static func run(directory: String, seconds: Double) throws -> Result {
        let path = directory + "/flush-probe"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("Cannot create \(path).") }
        defer {
            close(fd)
            unlink(path)
        }
        _ = posix_fallocate(fd, 0, 64 * 1024 * 1024)
        let record = [UInt8](repeating: 0x5A, count: 128)
        var latencies: [Double] = []
        var offset: off_t = 0
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: .seconds(seconds))
        while clock.now < end {
            let start = clock.now
            _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
            guard fdatasync(fd) == 0 else { throw ValidationError("fdatasync failed: errno \(errno).") }
            latencies.append(start.duration(to: clock.now).microseconds)
            offset = (offset + 128) % (60 * 1024 * 1024)
        }
        return Result(
            flushesPerSecond: Double(latencies.count) / seconds,
            p50Microseconds: percentile(latencies, 0.5),
            p99Microseconds: percentile(latencies, 0.99)
        )
    }
}

/// The scenarios, on any store.
struct BenchScenarios {
    let seconds: Double
    var includeSixteenWriters = false
    let clock = ContinuousClock()

    static func event(_ size: Int = 128) -> EventData {
        EventData(
            type: "Benchmarked", data: Data(repeating: 0x61, count: size - "Benchmarked".utf8.count),
            contentType: .binary)
    }

    /// Appends one event to `bench-single` after another, awaiting each, for `duration` seconds;
    /// each one's latency goes into `latencies`. Returns the seconds it took.
    private func appendOneByOne(
        to store: some EventStore, for duration: Double, into latencies: inout [Double]
    ) async throws -> Double {
        let single = try StreamName("bench-single")
        let start = clock.now
        let end = start.advanced(by: .seconds(duration))
        while clock.now < end {
            let began = clock.now
            _ = try await store.append([Self.event()], to: single, expecting: .any)
            latencies.append(began.duration(to: clock.now).microseconds)
        }
        return start.duration(to: clock.now).seconds
    }

    /// One event per append, awaited one by one.
    func singleAppends(on store: some EventStore) async throws -> BenchResults.Throughput {
        var latencies: [Double] = []
        _ = try await appendOneByOne(to: store, for: seconds, into: &latencies)
        return .init(
            eventsPerSecond: Double(latencies.count) / seconds,
            p50Microseconds: percentile(latencies, 0.5),
            p99Microseconds: percentile(latencies, 0.99)
        )
    }

    /// One event per append, awaited one by one, in slices alternating with slices of `probe` (run for
    /// the seconds it is given): two slices per second of the scenario, each half the probe's, half the
    /// appends'. The probe's rate drifts by itself on this kind of machine (by a tenth between the
    /// probe before and the probe after, at times); alternating makes both see the same drift. Returns
    /// the appends and the probe over its slices (its p50 and p99: the median of the slices').
    func singleAppends(
        on store: some EventStore, alternatingWith probe: (Double) async throws -> FlushProbe.Result
    ) async throws -> (BenchResults.Throughput, FlushProbe.Result) {
        let rounds = max(2, Int((seconds * 2).rounded()))
        let slice = seconds / Double(rounds)
        var latencies: [Double] = []
        var elapsed = 0.0
        var probes: [FlushProbe.Result] = []
        // Warm-up, not measured: the stream's creation, a connection's first use of a statement, the
        // probe's table or file.
        _ = try await probe(min(slice, 0.2))
        var unmeasured: [Double] = []
        _ = try await appendOneByOne(to: store, for: min(slice, 0.2), into: &unmeasured)
        for _ in 0..<rounds {
            probes.append(try await probe(slice))
            elapsed += try await appendOneByOne(to: store, for: slice, into: &latencies)
        }
        let appends = BenchResults.Throughput(
            eventsPerSecond: Double(latencies.count) / elapsed,
            p50Microseconds: percentile(latencies, 0.5),
            p99Microseconds: percentile(latencies, 0.99)
        )
        let alternating = FlushProbe.Result(
            flushesPerSecond: probes.map(\.flushesPerSecond).reduce(0, +) / Double(probes.count),
            p50Microseconds: percentile(probes.map(\.p50Microseconds), 0.5),
            p99Microseconds: percentile(probes.map(\.p99Microseconds), 0.5)
        )
        return (appends, alternating)
    }

    func run(
        on store: some EventStore, into results: inout BenchResults,
        probe: (Double) async throws -> FlushProbe.Result
    ) async throws {
        (results.singleAppends, results.probeAlternating) = try await singleAppends(
            on: store, alternatingWith: probe)

        // 100 events per append.
        let batched = try StreamName("bench-batched")
        // Events are made before the clock starts: the scenario measures the store, not UUID().
        var batches = (0..<64).map { _ in (0..<100).map { _ in Self.event() } }
        var appended = 0
        var latencies: [Double] = []
        let end = clock.now.advanced(by: .seconds(seconds))
        while clock.now < end {
            if batches.isEmpty { batches = (0..<64).map { _ in (0..<100).map { _ in Self.event() } } }
            let batch = batches.removeLast()
            let start = clock.now
            _ = try await store.append(batch, to: batched, expecting: .any)
            latencies.append(start.duration(to: clock.now).microseconds)
            appended += 100
        }
        results.batchedAppends = .init(
            eventsPerSecond: Double(appended) / seconds,
            p50Microseconds: percentile(latencies, 0.5),
            p99Microseconds: percentile(latencies, 0.99)
        )

        // 64 concurrent appenders, one event each, different streams (and 16, for PostgreSQL).
        if includeSixteenWriters {
            results.sixteenWriters = try await concurrent(store, writers: 16)
        }
        results.concurrentAppends = try await concurrent(store, writers: 64)

        // Reads: a 10,000-event stream, and $all.
        let readStream = try StreamName("bench-read")
        for _ in 0..<10 {
            _ = try await store.append((0..<1_000).map { _ in Self.event() }, to: readStream, expecting: .any)
        }
        _ = try await store.read(readStream, from: nil, direction: .forwards, limit: .max)  // warm the cache
        var start = clock.now
        var rounds = 0
        while start.duration(to: clock.now) < .seconds(min(seconds, 1)) || rounds == 0 {
            let events = try await store.read(readStream, from: nil, direction: .forwards, limit: .max)
            precondition(events.count == 10_000)
            rounds += 1
        }
        results.readStreamEventsPerSecond = Double(rounds * 10_000) / start.duration(to: clock.now).seconds
        let head = try await store.headPosition().value
        start = clock.now
        var read: UInt64 = 0
        var next: Position? = nil
        while read < head {
            let page = try await store.readAll(from: next, direction: .forwards, filter: .all, limit: 4_096)
            guard let last = page.last else { break }
            read += UInt64(page.count)
            next = last.position.next
        }
        results.readAllEventsPerSecond = Double(read) / start.duration(to: clock.now).seconds
        (results.subscriptionP50Microseconds, results.subscriptionP99Microseconds) = try await subscriptionLatency(
            on: store, samples: 500)
    }

    /// Live subscription delivery: from the append's acknowledgement to the subscriber; p50 and p99 in µs.
    func subscriptionLatency(on store: some EventStore, samples: Int) async throws -> (Double, Double) {
        let delivered = Mutex<[ContinuousClock.Instant]>([])
        let (ready, readySignal) = AsyncStream.makeStream(of: Void.self)
        let subscriber = Task {
            var iterator = store.subscribe(to: .all, from: .end).makeAsyncIterator()
            readySignal.yield()
            for _ in 0..<samples {
                guard try await iterator.next() != nil else { break }
                let now = clock.now
                delivered.withLock { $0.append(now) }
            }
        }
        var readyIterator = ready.makeAsyncIterator()
        _ = await readyIterator.next()
        let live = try StreamName("bench-live")
        var acknowledged: [ContinuousClock.Instant] = []
        for _ in 0..<samples {
            _ = try await store.append([Self.event()], to: live, expecting: .any)
            acknowledged.append(clock.now)
            while delivered.withLock({ $0.count }) < acknowledged.count { await Task.yield() }
        }
        try await subscriber.value
        let deliveries = delivered.withLock { $0 }
        let gaps = zip(acknowledged, deliveries).map { max(0, $0.duration(to: $1).microseconds) }
        return (percentile(gaps, 0.5), percentile(gaps, 0.99))
    }

    /// `writers` appenders, each appending one event at a time to its own stream.
    func concurrent(_ store: some EventStore, writers: Int) async throws -> BenchResults.Throughput {
        let deadline = clock.now.advanced(by: .seconds(seconds))
        let all = try await withThrowingTaskGroup(of: [Double].self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let stream = try StreamName("bench-concurrent\(writers)-\(writer)")
                    var latencies: [Double] = []
                    while clock.now < deadline {
                        let start = clock.now
                        _ = try await store.append([Self.event()], to: stream, expecting: .any)
                        latencies.append(start.duration(to: clock.now).microseconds)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return .init(
            eventsPerSecond: Double(all.count) / seconds,
            p50Microseconds: percentile(all, 0.5),
            p99Microseconds: percentile(all, 0.99)
        )
    }

    /// Builds a store of `events` events, closes it, and times opening it again.
    var quiet: FileEventStore.Configuration {
        var configuration = FileEventStore.Configuration()
        configuration.logger.logLevel = .warning
        return configuration
    }

    func recovery(directory: String, events: Int) async throws -> BenchResults.Recovery {
        let baseline = residentBytes()
        try await FileEventStore.withStore(at: directory, configuration: quiet) { store in
            var written = 0
            var stream = 0
            while written < events {
                let count = min(1_000, events - written)
                _ = try await store.append(
                    (0..<count).map { _ in Self.event() },
                    to: try StreamName("recovery-\(stream % 1_000)"),
                    expecting: .any
                )
                written += count
                stream += 1
            }
        }
        let bytes = directorySize(directory + "/segments")
        // A clean restart reads the index manifest and scans nothing.
        var start = clock.now
        var store = try FileEventStore.open(at: directory, configuration: quiet)
        let checkpointSeconds = start.duration(to: clock.now).seconds
        await store.close()
        // Without an index the whole log is scanned, every checksum checked, and the index rebuilt.
        try? FileManager.default.removeItem(atPath: directory + "/index")
        let before = residentBytes()
        start = clock.now
        store = try FileEventStore.open(at: directory, configuration: quiet)
        let elapsed = start.duration(to: clock.now).seconds
        let after = residentBytes()
        let head = try await store.headPosition().value
        store.abandonWithoutCheckpoint()
        _ = baseline
        return .init(
            events: Int(head),
            logBytes: bytes,
            openSeconds: elapsed,
            scanBytesPerSecond: Double(bytes) / max(elapsed, 1e-9),
            indexBytesPerEvent: head == 0 ? 0 : Double(max(0, after - before)) / Double(head),
            checkpointOpenSeconds: checkpointSeconds
        )
    }
}

/// Everything `bench` measured.
struct BenchResults: Codable {
    struct Throughput: Codable {
        var eventsPerSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
    }

    struct Recovery: Codable {
        var events: Int
        var logBytes: Int64
        var openSeconds: Double
        var scanBytesPerSecond: Double
        var indexBytesPerEvent: Double
        var checkpointOpenSeconds: Double
    }

    var store: String
    var directory: String
    var seconds: Double
    var probeBefore: FlushProbe.Result?
    var probeAfter: FlushProbe.Result?
    /// The probe in slices alternating with those of the single appends, which are measured against it.
    var probeAlternating: FlushProbe.Result?
    var singleAppends: Throughput?
    var batchedAppends: Throughput?
    var concurrentAppends: Throughput?
    var sixteenWriters: Throughput?
    var readStreamEventsPerSecond: Double?
    var readAllEventsPerSecond: Double?
    var subscriptionP50Microseconds: Double?
    var subscriptionP99Microseconds: Double?
    var recovery: Recovery?
    /// The same scenarios over HTTP (`--server`): a server on a file store, a `RemoteEventStore` client.
    var http: HTTPResults?

    struct HTTPResults: Codable {
        var singleAppends: Throughput
        var concurrentAppends: Throughput
        var subscriptionP50Microseconds: Double
        var subscriptionP99Microseconds: Double
        /// The server's CPU time per request in each append scenario (from `/proc`).
        var singleAppendServerCPUMicroseconds: Double?
        var concurrentAppendServerCPUMicroseconds: Double?
        var soak: SoakScenario.Result?
    }

    /// The probe's rate: the mean of its runs before and after the scenarios.
    var probeRate: Double {
        let rates = [probeBefore, probeAfter].compactMap { $0?.flushesPerSecond }
        return rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)
    }

    /// Each durable figure as a ratio to the probe, with the DESIGN §9 target.
    var ratios: [String: Double] {
        guard probeRate > 0 else { return [:] }
        var ratios: [String: Double] = [:]
        if let singleAppends {
            let probe = probeAlternating?.flushesPerSecond ?? probeRate
            if probe > 0 { ratios["singleAppendsToProbe"] = singleAppends.eventsPerSecond / probe }
        }
        if let batchedAppends { ratios["batchedEventsToProbe"] = batchedAppends.eventsPerSecond / probeRate }
        if let concurrentAppends { ratios["concurrentEventsToProbe"] = concurrentAppends.eventsPerSecond / probeRate }
        if let sixteenWriters { ratios["sixteenWritersToProbe"] = sixteenWriters.eventsPerSecond / probeRate }
        return ratios
    }

    enum CodingKeys: String, CodingKey {
        case store, directory, seconds, probeBefore, probeAfter, probeAlternating, singleAppends, batchedAppends
        case concurrentAppends
        case sixteenWriters
        case readStreamEventsPerSecond, readAllEventsPerSecond, subscriptionP50Microseconds
        case subscriptionP99Microseconds, recovery, ratios, probeRate, http
    }

    init(store: String, directory: String, seconds: Double) {
        self.store = store
        self.directory = directory
        self.seconds = seconds
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        store = try container.decode(String.self, forKey: .store)
        directory = try container.decode(String.self, forKey: .directory)
        seconds = try container.decode(Double.self, forKey: .seconds)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(store, forKey: .store)
        try container.encode(directory, forKey: .directory)
        try container.encode(seconds, forKey: .seconds)
        try container.encodeIfPresent(probeBefore, forKey: .probeBefore)
        try container.encodeIfPresent(probeAfter, forKey: .probeAfter)
        try container.encodeIfPresent(probeAlternating, forKey: .probeAlternating)
        try container.encode(probeRate, forKey: .probeRate)
        try container.encodeIfPresent(singleAppends, forKey: .singleAppends)
        try container.encodeIfPresent(batchedAppends, forKey: .batchedAppends)
        try container.encodeIfPresent(concurrentAppends, forKey: .concurrentAppends)
        try container.encodeIfPresent(sixteenWriters, forKey: .sixteenWriters)
        try container.encodeIfPresent(readStreamEventsPerSecond, forKey: .readStreamEventsPerSecond)
        try container.encodeIfPresent(readAllEventsPerSecond, forKey: .readAllEventsPerSecond)
        try container.encodeIfPresent(subscriptionP50Microseconds, forKey: .subscriptionP50Microseconds)
        try container.encodeIfPresent(subscriptionP99Microseconds, forKey: .subscriptionP99Microseconds)
        try container.encodeIfPresent(recovery, forKey: .recovery)
        try container.encodeIfPresent(http, forKey: .http)
        try container.encode(ratios, forKey: .ratios)
    }

    func table() -> String {
        var lines = ["Annals bench: \(store) store, \(seconds) s per scenario", ""]
        func row(_ name: String, _ value: String, _ ratio: String = "", _ target: String = "") {
            // At least two spaces between columns, even when a value is wider than its column.
            func pad(_ text: String, _ width: Int) -> String {
                text + String(repeating: " ", count: max(width - text.count, 2))
            }
            lines.append(pad(name, 46) + pad(value, 40) + pad(ratio, 14) + target)
        }
        row("scenario", "measured", "vs probe", "target (DESIGN §9)")
        if let probe = probeBefore {
            row("flush probe (before)", "\(format(probe.flushesPerSecond))/s p50 \(format(probe.p50Microseconds)) µs")
        }
        if let probe = probeAfter {
            row("flush probe (after)", "\(format(probe.flushesPerSecond))/s p50 \(format(probe.p50Microseconds)) µs")
        }
        if let probe = probeAlternating {
            row(
                "flush probe (alternating with single appends)",
                "\(format(probe.flushesPerSecond))/s p50 \(format(probe.p50Microseconds)) µs")
        }
        let ratios = self.ratios
        if let value = singleAppends {
            row(
                "1 event per append, awaited one by one",
                "\(format(value.eventsPerSecond)) ev/s p99 \(format(value.p99Microseconds)) µs",
                ratios["singleAppendsToProbe"].map { "\(format($0 * 100))%" } ?? "",
                store == "postgres" ? "≥ 80% of probe" : "≥ 90% of probe"
            )
        }
        if let value = batchedAppends {
            row(
                "100 events per append",
                "\(format(value.eventsPerSecond)) ev/s",
                ratios["batchedEventsToProbe"].map { "\(format($0))×" } ?? "",
                "≥ 50× probe"
            )
        }
        if let value = sixteenWriters {
            row(
                "16 concurrent appenders, 1 event each",
                "\(format(value.eventsPerSecond)) ev/s p50 \(format(value.p50Microseconds)) p99 \(format(value.p99Microseconds)) µs",
                ratios["sixteenWritersToProbe"].map { "\(format($0))×" } ?? "",
                "≥ 5,000 ev/s (PostgreSQL)"
            )
        }
        if let value = concurrentAppends {
            row(
                "64 concurrent appenders, 1 event each",
                "\(format(value.eventsPerSecond)) ev/s p50 \(format(value.p50Microseconds)) p99 \(format(value.p99Microseconds)) µs",
                ratios["concurrentEventsToProbe"].map { "\(format($0))×" } ?? "",
                "≥ 12× probe, p99 ≤ 2 ms"
            )
        }
        if let value = readStreamEventsPerSecond {
            row("read a 10,000-event stream", "\(format(value)) ev/s", "", "≥ 2 M ev/s")
        }
        if let value = readAllEventsPerSecond { row("read $all", "\(format(value)) ev/s", "", "≥ 2 M ev/s") }
        if let p50 = subscriptionP50Microseconds {
            row(
                "live subscription, durable → delivered",
                "p50 \(format(p50)) µs p99 \(format(subscriptionP99Microseconds ?? 0)) µs", "", "p50 ≤ 50 µs")
        }
        if let recovery {
            row("open after a clean close (index manifest)", "\(format(recovery.checkpointOpenSeconds * 1000)) ms")
            row(
                "open without an index (scan and rebuild), \(recovery.events) events",
                "\(format(recovery.openSeconds * 1000)) ms, \(format(recovery.scanBytesPerSecond / 1e6)) MB/s",
                "",
                "≥ 1 GB/s"
            )
            row("resident growth of that open, per event", "\(format(recovery.indexBytesPerEvent)) bytes")
        }
        if let http {
            lines.append("")
            lines.append("Over HTTP (annals serve, a child process, on a file store; RemoteEventStore on 127.0.0.1):")
            row(
                "1 client, 1 event per append, one by one",
                "\(format(http.singleAppends.eventsPerSecond)) ev/s p50 \(format(http.singleAppends.p50Microseconds)) p99 \(format(http.singleAppends.p99Microseconds)) µs",
                probeRate > 0 ? "\(format(http.singleAppends.eventsPerSecond / probeRate * 100))%" : "")
            row(
                "64 concurrent clients, 1 event each",
                "\(format(http.concurrentAppends.eventsPerSecond)) ev/s p50 \(format(http.concurrentAppends.p50Microseconds)) p99 \(format(http.concurrentAppends.p99Microseconds)) µs",
                probeRate > 0 ? "\(format(http.concurrentAppends.eventsPerSecond / probeRate))×" : "")
            row(
                "SSE subscription, acknowledged → delivered",
                "p50 \(format(http.subscriptionP50Microseconds)) µs p99 \(format(http.subscriptionP99Microseconds)) µs")
            if let single = http.singleAppendServerCPUMicroseconds,
                let concurrent = http.concurrentAppendServerCPUMicroseconds
            {
                row(
                    "server CPU per append request",
                    "1 client \(format(single)) µs, 64 clients \(format(concurrent)) µs")
            }
            if let soak = http.soak {
                lines.append("")
                lines.append(
                    "Soak: \(format(soak.seconds)) s on \(soak.connections) connection(s), \(soak.requests) appends, \(soak.failures) failed:"
                )
                for (name, tenth) in [("first tenth", soak.first), ("last tenth", soak.last)] {
                    let memory = tenth.serverResidentBytes.map { "RSS \(format(Double($0) / 1_048_576)) MiB" } ?? ""
                    let cpu = tenth.serverCPUMicrosecondsPerRequest.map { "CPU \(format($0)) µs/req" } ?? ""
                    row(
                        name,
                        "\(format(tenth.requestsPerSecond)) req/s p50 \(format(tenth.p50Microseconds)) p99 \(format(tenth.p99Microseconds)) µs",
                        "", "\(memory) \(cpu)")
                }
                row(
                    "last tenth / first tenth", "throughput \(format(soak.throughputRatio * 100))%",
                    soak.memoryRatio.map { "memory \(format($0 * 100))%" } ?? "", "≥ 90%; memory ≤ 110%")
                if let growth = soak.residentGrowthPerAppend {
                    row("server memory growth per append", "\(format(growth)) bytes", "", "the file store's index: ~50")
                }
                row(
                    "operator round (subscribe, /stats, /streams, /health, /metrics)",
                    "first \(soak.first.operatorRoundMilliseconds.map { format($0) } ?? "–") ms, last \(soak.last.operatorRoundMilliseconds.map { format($0) } ?? "–") ms",
                    "",
                    "\(soak.subscriptionsOpened) subscriptions, \(soak.liveSubscriptionsAtEnd.map(String.init) ?? "?") left live"
                )
            }
        }
        return lines.joined(separator: "\n")
    }
}

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
}

func format(_ value: Double) -> String {
    if value >= 100 { return String(Int(value.rounded())) }
    return String(format: "%.2f", value)
}

func residentBytes() -> Int64 {
    ProcessUsage.current?.residentBytes ?? 0
}

func directorySize(_ path: String) -> Int64 {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.reduce(0) { total, name in
        let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
        return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var microseconds: Double { seconds * 1e6 }
}
