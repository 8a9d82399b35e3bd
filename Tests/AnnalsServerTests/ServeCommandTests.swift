import Annals
import AnnalsClient
import AnnalsTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `annals serve`, the real binary: first start, a token, appends, SIGTERM, restart.
@Suite("annals serve (the binary)")
struct ServeCommandTests {
    @Test(
        "starts, prints a token once, serves, stops cleanly on SIGTERM, and keeps everything", .timeLimit(.minutes(2)))
    func lifecycle() async throws {
        let data = NSTemporaryDirectory() + "annals-serve-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (first, url, printed) = try await Child.serve(data: data)
        let token = try #require(printed)
        let store = try RemoteEventStore(url: url, token: token)
        let stream = try StreamName("serve-1")
        let written = try await store.append(
            [EventData(type: "Started", data: Data(#"{"n":1}"#.utf8))], to: stream, expecting: .noStream)
        // The file store's group commits show in the metrics.
        var metricsRequest = HTTPClientRequest(url: url + "/metrics")
        metricsRequest.headers.add(name: "Authorization", value: "Bearer \(token)")
        let metricsResponse = try await HTTPClient.shared.execute(metricsRequest, timeout: .seconds(10))
        var metricsBody = try await metricsResponse.body.collect(upTo: 1 << 20)
        let metrics = metricsBody.readString(length: metricsBody.readableBytes) ?? ""
        #expect(metrics.contains(#"annals_group_commits_total{store="file"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"annals_flush_duration_seconds_count{store="file"} 1"#))
        #expect(metrics.contains(#"annals_appends_total{store="file"} 1"#))
        // A live subscription must not hold the shutdown up.
        let firstEvent = AsyncStream<Void>.makeStream()
        let subscription = Task {
            var seen = 0
            do {
                for try await _ in store.subscribe(to: .stream(stream), from: .beginning) {
                    seen += 1
                    firstEvent.continuation.yield()
                }
            } catch {}
            return seen
        }
        // Live and delivering before the signal (a fixed 300 ms pause was too short in a loaded run).
        var delivered = firstEvent.stream.makeAsyncIterator()
        _ = await delivered.next()
        let stopped = ContinuousClock.now
        first.signal(SIGTERM)
        let status = (try await first.exit())
        #expect(status == 0, "exit status \(status); output: \(first.output)")
        #expect(ContinuousClock.now - stopped < .seconds(10), "output: \(first.output)")
        #expect(first.output.contains("Annals stopped"))
        subscription.cancel()
        #expect(await subscription.value >= 1)

        let (second, secondURL, _) = try await Child.serve(data: data)
        #expect(!second.output.contains("Created the first admin token"), "a token is created on the first start only")
        let reopened = try RemoteEventStore(url: secondURL, token: token)
        let events = try await reopened.read(stream)
        #expect(events.map(\.position) == [written.firstPosition])
        second.signal(SIGINT)
        #expect((try await second.exit()) == 0)
        let tokens = try String(contentsOfFile: data + "/tokens.json", encoding: .utf8)
        #expect(!tokens.contains(token), "only the token's hash is stored")
    }

    @Test("hostile requests, repeated, do not make the server's memory grow", .timeLimit(.minutes(2)))
    func noGrowthUnderBadInput() async throws {
        let data = NSTemporaryDirectory() + "annals-serve-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (child, url, printed) = try await Child.serve(data: data, ["--log-level", "warning"])
        let token = try #require(printed)
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        let bodies = [
            deep, "{oops", String(repeating: "x", count: 200_000), #"[{"type":"\ud800","data":1}]"#, "[]",
            #"[{"type":"T","data":1,"x":2}]"#,
        ]
        func round() async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, body) in bodies.enumerated() {
                    group.addTask {
                        var request = HTTPClientRequest(url: url + "/streams/bad-\(index)?from=-1")
                        request.method = index % 2 == 0 ? .POST : .PUT
                        request.headers.add(name: "Authorization", value: "Bearer \(token)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: body))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                        _ = try await response.body.collect(upTo: 1 << 20)
                    }
                }
                try await group.waitForAll()
            }
        }
        for _ in 0..<50 { try await round() }
        let warm = Self.residentBytes(child.pid)
        for _ in 0..<250 { try await round() }
        let after = Self.residentBytes(child.pid)
        #expect(warm > 0 && after - warm < 24 << 20, "resident memory grew from \(warm) to \(after) bytes")
        child.signal(SIGTERM)
        #expect((try await child.exit()) == 0)
    }

    static func residentBytes(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    @Test("a non-loopback address without TLS needs --insecure")
    func insecure() async throws {
        let data = NSTemporaryDirectory() + "annals-serve-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let child = try Child(arguments: ["serve", "--data", data, "--host", "0.0.0.0", "--port", "0"])
        #expect((try await child.exit()) != 0)
        #expect(child.output.contains("--insecure"), "\(child.output)")
    }

    @Test(
        "a first start on a busy port exits 2 with the reason and leaves no token behind; the next start prints one",
        .timeLimit(.minutes(2)))
    func busyPortOnFirstStart() async throws {
        let holder = NSTemporaryDirectory() + "annals-serve-\(UUID().uuidString)"
        let data = NSTemporaryDirectory() + "annals-serve-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: holder)
            try? FileManager.default.removeItem(atPath: data)
        }
        let (first, url, _) = try await Child.serve(data: holder)
        let port = try #require(url.split(separator: ":").last.map(String.init))
        let refused = try Child(arguments: ["serve", "--data", data, "--port", port])
        #expect(try await refused.exit() == 2, "\(refused.output)")
        #expect(refused.output.contains("annals: unavailable: Cannot listen on 127.0.0.1:\(port)"), "\(refused.output)")
        #expect(refused.output.contains("in use"), "\(refused.output)")
        #expect(!refused.output.contains("annals_"), "no token is shown by a start that failed")
        let kept = (try? String(contentsOfFile: data + "/tokens.json", encoding: .utf8)) ?? "[]"
        #expect(!kept.contains("admin"), "no token is kept by a start that failed: \(kept)")
        first.signal(SIGTERM)
        #expect(try await first.exit() == 0)

        let (second, _, printed) = try await Child.serve(data: data)
        #expect(printed != nil, "the first start that listens prints the admin token: \(second.output)")
        second.signal(SIGTERM)
        #expect(try await second.exit() == 0)
    }
}
