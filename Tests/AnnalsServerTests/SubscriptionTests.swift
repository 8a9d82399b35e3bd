import Annals
import AnnalsServer
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Server-sent events as a browser sees them: ids, resumption, keep-alive, limits.
@Suite("Subscriptions over SSE")
struct SubscriptionTests {
    static let json = ["Content-Type": "application/json"]

    /// Reads an SSE answer until `stop` says so (or 10 s pass); returns the text read.
    static func readSSE(
        _ server: TestServer, _ path: String, headers: [String: String] = [:], until stop: @Sendable (String) -> Bool
    ) async throws -> (status: Int, text: String) {
        var request = HTTPClientRequest(url: server.url + path)
        request.headers.add(name: "Authorization", value: "Bearer \(server.admin)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        var text = ""
        guard response.status == .ok else {
            var body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), body.readString(length: body.readableBytes) ?? "")
        }
        for try await var chunk in response.body {
            text += chunk.readString(length: chunk.readableBytes) ?? ""
            if stop(text) { break }
        }
        return (200, text)
    }

    @Test(
        "ids are positions ($all) or revisions (a stream); Last-Event-ID resumes after the id, even with from=end in the URL"
    )
    func resume() async throws {
        try await TestServer.with { server in
            for index in 0..<5 {
                let stream = index % 2 == 0 ? "even-1" : "odd-1"
                _ = try await server.request(
                    .POST, "/streams/\(stream)", token: server.admin, headers: Self.json,
                    body: Array(#"[{"type":"E\#(index)","data":{}}]"#.utf8))
            }
            let all = try await Self.readSSE(server, "/subscribe/all") { $0.components(separatedBy: "id: ").count > 5 }
            #expect(all.text.contains("id: 0\n") && all.text.contains("id: 4\n"))
            let stream = try await Self.readSSE(server, "/subscribe/streams/even-1") { $0.contains("id: 2\n") }
            #expect(
                stream.text.contains("id: 0\n") && stream.text.contains("\"type\":\"E4\""), "revisions, not positions")
            let resumed = try await Self.readSSE(server, "/subscribe/all?from=end", headers: ["Last-Event-ID": "2"]) {
                $0.contains("id: 4\n")
            }
            #expect(resumed.status == 200)
            #expect(!resumed.text.contains("id: 2\n") && resumed.text.contains("id: 3\n"), "\(resumed.text)")
        }
    }

    @Test("an idle subscription gets keep-alive comments")
    func keepAlive() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.keepAliveInterval = .milliseconds(200)
        try await TestServer.with(configuration: configuration) { server in
            let answer = try await Self.readSSE(server, "/subscribe/all") { $0.contains(": keep-alive") }
            #expect(answer.text.contains(": keep-alive\n\n"))
        }
    }

    @Test("a token holds at most its number of live subscriptions; a slot frees when one ends")
    func perTokenLimit() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.subscriptionsPerToken = 2
        try await TestServer.with(configuration: configuration) { server in
            let client = try server.client()
            let holders = (0..<2).map { _ in
                Task {
                    for try await _ in client.subscribe(to: .all, from: .beginning) {}
                }
            }
            // Wait until both are live.
            for _ in 0..<100 {
                let stats = try await server.request(.GET, "/stats", token: server.admin)
                if stats.body.contains("\"liveSubscriptions\":2") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let refused = try await server.request(.GET, "/subscribe/all", token: server.admin)
            #expect(refused.status == 429 && refused.body.contains("too-many-subscriptions"), "\(refused)")
            holders[0].cancel()
            var admitted = false
            for _ in 0..<100 where !admitted {
                let stats = try await server.request(.GET, "/stats", token: server.admin)
                admitted = stats.body.contains("\"liveSubscriptions\":1")
                if !admitted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(admitted, "the cancelled subscription's slot was released")
            holders[1].cancel()
        }
    }

    @Test("subscribing to a tombstoned stream is 410, not an endless reconnect")
    func tombstoned() async throws {
        try await TestServer.with { server in
            _ = try await server.request(
                .POST, "/streams/gone-1", token: server.admin, headers: Self.json,
                body: Array(#"[{"type":"T","data":{}}]"#.utf8))
            #expect(
                try await server.request(.DELETE, "/streams/gone-1?tombstone=true", token: server.admin).status == 204)
            let answer = try await server.request(.GET, "/subscribe/streams/gone-1", token: server.admin)
            #expect(answer.status == 410 && answer.body.contains("stream-deleted"))
            let client = try server.client()
            await #expect(throws: EventStoreError.self) {
                for try await _ in client.subscribe(to: .stream(try StreamName("gone-1")), from: .beginning) {}
            }
        }
    }
}
