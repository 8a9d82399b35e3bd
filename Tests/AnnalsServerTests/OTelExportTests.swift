import Annals
import AnnalsClient
import AnnalsTestSupport
import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing

@testable import AnnalsCLI

#if canImport(Glibc)
    import Glibc
#endif

/// `annals serve --otel-endpoint` sends its traces and metrics to an OTLP/HTTP collector.
@Suite("OpenTelemetry export of annals serve")
struct OTelExportTests {
    @Test(
        "the binary posts traces and metrics to the collector, the last of them when it stops",
        .enabled(if: Traits.otel, "built without the OTel trait"), .timeLimit(.minutes(2)))
    func exportsToCollector() async throws {
        // A collector: counts the OTLP/HTTP posts it receives, by path.
        let received = Mutex<[String: Int]>([:])
        let router = Router()
        for path in ["/v1/traces", "/v1/metrics"] {
            router.post(RouterPath(path)) { request, _ in
                _ = try await request.body.collect(upTo: 16 << 20)
                received.withLock { $0[path, default: 0] += 1 }
                return Response(status: .ok)
            }
        }
        let listening = AsyncStream<Int>.makeStream()
        let collector = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { listening.continuation.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "collector", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await collector.run() }
            defer { group.cancelAll() }
            var ports = listening.stream.makeAsyncIterator()
            let port = try #require(await ports.next())
            let data = NSTemporaryDirectory() + "annals-otel-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: data) }
            let (child, url, printed) = try await Child.serve(
                data: data, ["--otel-endpoint", "http://127.0.0.1:\(port)", "--log-level", "warning"])
            let token = try #require(printed)
            let store = try RemoteEventStore(url: url, token: token)
            for index in 0..<3 {
                try await store.append(
                    [EventData(type: "Exported", data: Data(#"{"n":\#(index)}"#.utf8))], to: try StreamName("otel-1"))
            }
            child.signal(SIGTERM)
            #expect((try await child.exit()) == 0, "\(child.output)")
            let counts = received.withLock { $0 }
            #expect(counts["/v1/traces", default: 0] >= 1, "traces exported: \(counts); \(child.output)")
            #expect(counts["/v1/metrics", default: 0] >= 1, "metrics exported: \(counts); \(child.output)")
        }
    }

    @Test("an endpoint that is not an http(s) URL is refused before anything starts")
    func badEndpoint() async throws {
        let data = NSTemporaryDirectory() + "annals-otel-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let child = try Child(arguments: ["serve", "--data", data, "--port", "0", "--otel-endpoint", "collector:4318"])
        #expect((try await child.exit()) == 2)
        #expect(child.output.contains("http(s) URL"), "\(child.output)")
    }
}
