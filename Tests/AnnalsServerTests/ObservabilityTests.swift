import Annals
import AnnalsClient
import AnnalsTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A Prometheus scrape of the real `annals serve` shows every metric docs/http-api.md names.
@Suite("Observability of annals serve")
struct ObservabilityTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The metric names in the first column of the tables under `## Metrics` in docs/http-api.md.
    static func documentedNames() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/http-api.md"), encoding: .utf8)
        let section =
            try #require(text.components(separatedBy: "\n## Metrics\n").dropFirst().first)
            .components(separatedBy: "\n## ").first ?? ""
        return section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `") else { return nil }
            let cell = line.dropFirst(3).prefix { $0 != "`" }
            return String(cell.prefix { $0 != "{" })
        }
    }

    /// Whether a scrape has a sample (not only a `# TYPE` line) of the metric `name`.
    static func scrape(_ scrape: String, has name: String) -> Bool {
        scrape.split(separator: "\n").contains { line in
            !line.hasPrefix("#")
                && (line.hasPrefix(name + " ") || line.hasPrefix(name + "{") || line.hasPrefix(name + "_bucket")
                    || line.hasPrefix(name + "_count"))
        }
    }

    @Test(
        "every documented metric is in a scrape after appends, reads, a subscription and errors",
        .timeLimit(.minutes(2)))
    func scrapeShowsDocumentedMetrics() async throws {
        let names = try Self.documentedNames()
        #expect(names.count >= 15, "the docs' metric tables were read: \(names)")
        let data = NSTemporaryDirectory() + "annals-obs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (child, url, printed) = try await Child.serve(data: data, ["--log-level", "warning"])
        let token = try #require(printed)
        let store = try RemoteEventStore(url: url, token: token)
        let stream = try StreamName("obs-1")
        for index in 0..<3 {
            try await store.append([EventData(type: "Seen", data: Data(#"{"n":\#(index)}"#.utf8))], to: stream)
        }
        // A subscription that receives an event, still open at the scrape.
        let subscription = Task {
            for try await _ in store.subscribe(to: .stream(stream), from: .beginning) { break }
        }
        _ = try await subscription.value
        let live = Task {
            for try await _ in store.subscribe(to: .all, from: .end) {}
        }
        defer { live.cancel() }
        // A streamed NDJSON read left open, and an error answer.
        var ndjson = HTTPClientRequest(url: url + "/streams/obs-1")
        ndjson.headers.add(name: "Authorization", value: "Bearer \(token)")
        ndjson.headers.add(name: "Accept", value: "application/x-ndjson")
        let open = try await HTTPClient.shared.execute(ndjson, timeout: .seconds(10))
        #expect(open.status == .ok)
        var missing = HTTPClientRequest(url: url + "/streams/obs-1?limit=many")
        missing.headers.add(name: "Authorization", value: "Bearer \(token)")
        _ = try await HTTPClient.shared.execute(missing, timeout: .seconds(10)).body.collect(upTo: 1 << 16)
        try await Task.sleep(for: .milliseconds(300))

        var request = HTTPClientRequest(url: url + "/metrics")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.headers["Content-Type"].first?.hasPrefix("text/plain") == true)
        var body = try await response.body.collect(upTo: 4 << 20)
        let scrape = body.readString(length: body.readableBytes) ?? ""
        _ = try? await open.body.collect(upTo: 1 << 20)
        for name in names {
            #expect(Self.scrape(scrape, has: name), "\(name) is documented but not in the scrape:\n\(scrape)")
        }
        // The check can fail: a name nothing emits is not found.
        #expect(!Self.scrape(scrape, has: "annals_not_a_metric_total"))
        #expect(scrape.contains(#"annals_appends_total{store="file"} 3"#), "\(scrape)")
        #expect(scrape.contains(#"annals_errors_total{code="invalid-argument"} 1"#), "\(scrape)")
        #expect(scrape.contains(#"http_route="/streams/{stream}""#), "HTTP metrics by route template:\n\(scrape)")
        child.signal(SIGTERM)
        #expect((try await child.exit()) == 0)
    }
}
