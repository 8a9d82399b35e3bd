import Annals
import AnnalsServer
import AnnalsTestSupport
import AnnalsTesting
import AnnalsWire
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Bugs an outside audit of the HTTP API found, each with the request that showed it.
@Suite("HTTP API audit")
struct AuditTests {
    /// Sends raw bytes, reads until the server closes or 2 s pass quietly; returns what came back.
    /// Sends `bytes` on a new connection, then reads until the server closes, or is quiet for 2 s once it
    /// has answered. The first byte may take up to 20 s: a whole-suite run on two cores once kept the
    /// server from answering within 2 s, and an answer read as empty failed a test for nothing.
    static func exchange(port: Int, _ bytes: [UInt8]) throws -> String {
        let fd = try BadInputTests.connectLocal(port: port)
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { break }
            sent += written
        }
        var answer: [UInt8] = []
        while true {
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, answer.isEmpty ? 20_000 : 2_000) > 0 else { break }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let got = recv(fd, &buffer, buffer.count, 0)
            if got <= 0 { break }
            answer += buffer[0..<got]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    @Test("an HTTP/1.1 request without Host is 400 invalid-argument", .timeLimit(.minutes(1)))
    func missingHost() async throws {
        try await TestServer.with { server in
            let port = server.port
            let answer = try await offThread {
                try Self.exchange(port: port, Array("GET /health HTTP/1.1\r\n\r\n".utf8))
            }
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.contains("invalid-argument") && answer.contains("Host"), "\(answer)")
            #expect(try await server.request(.GET, "/health").status == 200, "with a Host it is served")
        }
    }

    @Test(
        "a chunked body over the body limit is 413 limit-exceeded, as one with Content-Length is",
        .timeLimit(.minutes(1)))
    func chunkedOverLimit() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.maximumBodyBytes = 1_000
        try await TestServer.with(configuration: configuration) { server in
            let (port, token) = (server.port, server.admin)
            let chunk = String(repeating: " ", count: 600)
            let request =
                "POST /streams/big-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n"
            let answer = try await offThread { try Self.exchange(port: port, Array(request.utf8)) }
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
            #expect(answer.contains("limit-exceeded"), "\(answer)")
            let read = try await server.request(.GET, "/streams/big-1", token: server.admin)
            #expect(read.status == 404 || read.body.contains(#""events":[]"#), "nothing was written: \(read.body)")
        }
    }

    @Test("the admin page ignores its query, repeats and bad escapes included; an empty 'after' is invalid-argument")
    func queryEdges() async throws {
        try await TestServer.with { server in
            #expect(try await server.request(.GET, "/?a=1&a=2").status == 200)
            #expect(try await server.request(.GET, "/?x=%zz").status == 200)
            #expect(try await server.request(.GET, "/health?a=1&a=2").status == 400, "other routes still refuse")
            let empty = try await server.request(.GET, "/streams?after=", token: server.admin)
            #expect(empty.status == 400, "\(empty.body)")
            #expect(empty.body.contains("invalid-argument") && empty.body.contains("after"), "\(empty.body)")
        }
    }

    @Test("malformed body framing is 400 with the JSON error body and a closed connection", .timeLimit(.minutes(1)))
    func malformedFraming() async throws {
        try await TestServer.with { server in
            let (port, token) = (server.port, server.admin)
            let head =
                "POST /streams/frame-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\n"
            for (label, rest) in [
                ("a chunk size that is not hex", "Transfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n"),
                (
                    "an over-long chunk size",
                    "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n[]\r\n0\r\n\r\n"
                ),
                ("Transfer-Encoding: gzip", "Transfer-Encoding: gzip\r\n\r\n[]"),
            ] {
                let answer = try await offThread { try Self.exchange(port: port, Array((head + rest).utf8)) }
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(label): \(answer)")
                #expect(answer.contains(#""code":"invalid-argument""#), "\(label): \(answer)")
                #expect(answer.lowercased().contains("connection: close"), "\(label): \(answer)")
            }
            #expect(try await server.request(.GET, "/health").status == 200)
        }
    }

    @Test(
        "a malformed request line or an over-large header block is 400 with the JSON error body, then closed",
        .timeLimit(.minutes(1)))
    func malformedHead() async throws {
        try await TestServer.with { server in
            let port = server.port
            let huge = String(repeating: "a", count: 200_000)
            for (label, request) in [
                ("a raw space in the target", "GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n"),
                ("a header block of 200 kB", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(huge)\r\n\r\n"),
                ("not HTTP at all", "\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\r\n\r\n"),
            ] {
                let answer = try await offThread { try Self.exchange(port: port, Array(request.utf8)) }
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(label): \(answer.prefix(300))")
                #expect(answer.contains(#""code":"invalid-argument""#), "\(label): \(answer.prefix(300))")
                #expect(answer.lowercased().contains("connection: close"), "\(label): \(answer.prefix(300))")
            }
            #expect(try await server.request(.GET, "/health").status == 200)
        }
    }

    @Test("the admin page allows nothing inline, may not be framed, and serves its script and style as files")
    func adminPagePolicy() async throws {
        try await TestServer.with { server in
            let page = try await server.request(.GET, "/")
            #expect(page.status == 200)
            let policy = page.headers.first(name: "Content-Security-Policy") ?? ""
            #expect(!policy.contains("unsafe-inline"), "\(policy)")
            #expect(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"), "\(policy)")
            #expect(page.headers.first(name: "X-Frame-Options") == "DENY")
            #expect(!page.body.contains("<style>") && !page.body.contains("<script>"), "no inline style or script")
            #expect(page.body.contains(#"<script src="admin/console.js"></script>"#))
            let script = try await server.request(.GET, "/admin/console.js?v=2")
            #expect(script.status == 200 && script.body.contains("history.replaceState"), "\(script.status)")
            #expect(script.headers.first(name: "Content-Type")?.hasPrefix("text/javascript") == true)
            let style = try await server.request(.GET, "/admin/console.css")
            #expect(style.status == 200 && style.body.contains("font:"), "\(style.status)")
            #expect(try await server.request(.POST, "/admin/console.js").status == 405)
        }
    }

    @Test("a store's own failure text stays in the log; the client gets the code and a stable message")
    func storeTextStaysInTheLog() async throws {
        let store = FailingStore(
            base: try InMemoryEventStore(),
            failure: EventStoreError(
                .unavailable, #"PostgreSQL: relation "annals.events" does not exist (SQLSTATE 42P01) at 10.0.0.5"#))
        try await TestServer.with(store: store) { server in
            let answer = try await server.request(
                .POST, "/streams/order-1", token: server.admin, headers: ["Content-Type": "application/json"],
                body: Array(#"[{"type":"T","data":{}}]"#.utf8))
            #expect(answer.status == 503, "\(answer.body)")
            let error = try #require(WireFormat.decodeError(Array(answer.body.utf8)))
            #expect(error.code == .unavailable)
            #expect(error.message == WireError.publicMessage(for: .unavailable))
            for leaked in ["PostgreSQL", "relation", "SQLSTATE", "10.0.0.5"] {
                #expect(!answer.body.contains(leaked), "\(answer.body)")
            }
        }
    }
}

/// A store whose appends fail with a given error, as a store whose database went away does.
struct FailingStore: ForwardingEventStore {
    let base: InMemoryEventStore
    let failure: EventStoreError

    func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision) async throws
        -> AppendResult
    {
        throw failure
    }
}
