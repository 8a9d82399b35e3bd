import Annals
import AnnalsServer
import AnnalsTestSupport
import Foundation
import NIOHTTP1
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Hostile and malformed requests get a clear 4xx with a JSON error; the server never crashes, and
/// what it acknowledged stays readable.
@Suite("Bad input")
struct BadInputTests {
    static let json = ["Content-Type": "application/json"]
    static let event = Array(#"[{"type":"T","data":{"a":1}}]"#.utf8)

    @Test("stream names and numbers that break the rules", .timeLimit(.minutes(2)))
    func names() async throws {
        try await TestServer.with { server in
            let acknowledged = try await server.request(
                .POST, "/streams/keep-1", token: server.admin, headers: Self.json, body: Self.event)
            #expect(acknowledged.status == 201)
            let long = String(repeating: "a", count: 257)
            let huge = String(repeating: "b", count: 65_536)
            let cases: [(String, Int, String)] = [
                ("/streams/a%2Fb", 201, ""),  // '/' inside a name, encoded, is just a character
                ("/streams/%2E%2E", 201, ""),
                ("/streams/%00x", 400, "invalid-stream-name"),
                ("/streams/a%0Ab", 400, "invalid-stream-name"),
                ("/streams/%24sys", 400, "invalid-stream-name"),
                ("/streams/\(long)", 400, "invalid-stream-name"),
            ]
            for (path, status, code) in cases {
                let answer = try await server.request(
                    .POST, path, token: server.admin, headers: Self.json, body: Self.event)
                #expect(answer.status == status, "\(path): \(answer.status) \(answer.body.prefix(160))")
                if !code.isEmpty { #expect(answer.body.contains(code), "\(path): \(answer.body.prefix(160))") }
            }
            // Escapes an HTTP client library would refuse to send: over a raw socket.
            for path in ["/streams/%zz", "/streams/%C3%28", "/streams/%4", "/streams/a?limit=%"] {
                let status = try await offThread { try Self.rawStatus(port: server.port, path: path) }
                #expect(status == 400, "\(path): \(status)")
            }
            // A 64 KiB name is refused by the HTTP layer or the name rules; never a 5xx.
            let giant = try await server.request(.GET, "/streams/\(huge)", token: server.admin)
            #expect((400..<500).contains(giant.status), "64 KiB name: \(giant.status)")
            for query in [
                "from=-1", "from=abc", "from=9223372036854775808", "from=99999999999999999999", "limit=-5",
                "limit=1e3", "direction=sideways", "from=1&from=2", "bogus=1",
            ] {
                let answer = try await server.request(.GET, "/streams/keep-1?\(query)", token: server.admin)
                #expect(answer.status == 400, "?\(query): \(answer.status)")
                #expect(answer.body.contains("invalid-argument"), "?\(query): \(answer.body)")
            }
            for header in ["-1", "abc", "9223372036854775808", "18446744073709551616", ""] {
                let answer = try await server.request(
                    .POST, "/streams/keep-1", token: server.admin,
                    headers: ["Content-Type": "application/json", "Expected-Revision": header], body: Self.event)
                #expect(answer.status == 400, "Expected-Revision \(header): \(answer.status)")
            }
            for lastEventID in ["-1", "x", "99999999999999999999"] {
                let answer = try await server.request(
                    .GET, "/subscribe/all", token: server.admin, headers: ["Last-Event-ID": lastEventID])
                #expect(answer.status == 400, "Last-Event-ID \(lastEventID): \(answer.status)")
            }
            let read = try await server.request(.GET, "/streams/keep-1", token: server.admin)
            #expect(read.status == 200 && read.body.contains("\"a\":1"), "the acknowledged event is still there")
        }
    }

    @Test("malformed bodies, wrong content types, empty batches and oversized bodies", .timeLimit(.minutes(2)))
    func bodies() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.maximumBodyBytes = 64 * 1024
        try await TestServer.with(configuration: configuration) { server in
            let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
            let cases: [(String, [String: String], [UInt8], Int, String)] = [
                ("not json", Self.json, Array("{oops".utf8), 400, "invalid-json"),
                ("trailing garbage", Self.json, Array(#"[{"type":"T","data":1}] x"#.utf8), 400, "invalid-json"),
                ("deep nesting", Self.json, Array(deep.utf8), 400, "invalid-json"),
                ("deep data", Self.json, Array(#"[{"type":"T","data":\#(deep)}]"#.utf8), 400, "invalid-json"),
                ("invalid UTF-8", Self.json, [0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D], 400, "invalid-json"),
                ("lone surrogate", Self.json, Array(#"[{"type":"\ud800","data":1}]"#.utf8), 400, "invalid-json"),
                ("empty batch", Self.json, Array("[]".utf8), 400, "invalid-event"),
                ("no type", Self.json, Array(#"[{"data":1}]"#.utf8), 400, "invalid-event"),
                ("no data", Self.json, Array(#"[{"type":"T"}]"#.utf8), 400, "invalid-event"),
                ("bad id", Self.json, Array(#"[{"id":"nope","type":"T","data":1}]"#.utf8), 400, "invalid-event"),
                ("unknown field", Self.json, Array(#"[{"type":"T","data":1,"x":2}]"#.utf8), 400, "invalid-event"),
                (
                    "bad base64", Self.json,
                    Array(#"[{"type":"T","contentType":"application/octet-stream","data":"%%"}]"#.utf8), 400,
                    "invalid-event"
                ),
                ("a number", Self.json, Array("42".utf8), 400, "invalid-event"),
                ("text/plain", ["Content-Type": "text/plain"], Self.event, 415, "unsupported-media-type"),
                (
                    "form", ["Content-Type": "application/x-www-form-urlencoded"], Self.event, 415,
                    "unsupported-media-type"
                ),
                ("oversized", Self.json, Array(repeating: 0x20, count: 70_000), 413, "limit-exceeded"),
                (
                    "control char in type", Self.json, Array(#"[{"type":"a\u0001b","data":1}]"#.utf8), 400,
                    "invalid-event"
                ),
            ]
            for (name, headers, body, status, code) in cases {
                let answer = try await server.request(
                    .POST, "/streams/s-1", token: server.admin, headers: headers, body: body)
                #expect(answer.status == status, "\(name): \(answer.status) \(answer.body.prefix(200))")
                #expect(answer.body.contains(code), "\(name): \(answer.body.prefix(200))")
            }
            let metadata = try await server.request(
                .PUT, "/streams/s-1/metadata", token: server.admin, headers: Self.json,
                body: Array(#"{"maxCount":-1}"#.utf8))
            #expect(metadata.status == 400, "negative maxCount: \(metadata.status) \(metadata.body)")
            let token = try await server.request(
                .POST, "/tokens", token: server.admin, headers: Self.json,
                body: Array(#"{"name":"x","role":"root"}"#.utf8))
            #expect(token.status == 400)
            #expect(try await server.request(.GET, "/health").status == 200, "the server is still up")
        }
    }

    @Test("binary data and non-JSON metadata round-trip byte for byte")
    func binary() async throws {
        try await TestServer.with { server in
            let client = try server.client()
            let stream = try StreamName("bin-1")
            let events = [
                EventData(type: "B", data: Data([0, 1, 2, 255]), contentType: .binary, metadata: Data([9, 9])),
                EventData(type: "J", data: Data(#"{ "spaced" :  [1, 2.50, "é"] }"#.utf8)),
                EventData(type: "K", data: Data("not json".utf8)),
            ]
            _ = try await client.append(events, to: stream, expecting: .noStream)
            let read = try await client.read(stream)
            #expect(read.map(\.eventData) == events)
        }
    }

    @Test("a client that sends its headers one byte at a time is cut off; others are served", .timeLimit(.minutes(1)))
    func slowHeaders() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.idleTimeout = .seconds(1)
        try await TestServer.with(configuration: configuration) { server in
            let port = server.port
            let started = ContinuousClock.now
            let closed = try await offThread {
                try Self.trickle(
                    port: port,
                    bytes: Array(
                        "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "a", count: 110))\r\n".utf8),
                    every: .milliseconds(200))
            }
            let elapsed = ContinuousClock.now - started
            #expect(closed, "the server closed the slow connection")
            // Alone the cut comes after about the 1 s idle timeout; under the whole parallel suite it was seen
            // at 6–11 s (the timer fires late; see the issue notes).
            #expect(elapsed < .seconds(27), "it took \(elapsed)")
            print("slow-header client cut off after \(elapsed)")
            #expect(try await server.request(.GET, "/health").status == 200)
        }
    }

    @Test(
        "a body trickled a byte at a time gets 408 and a closed connection; others are served", .timeLimit(.minutes(1)))
    func slowBody() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.bodyTimeout = .seconds(2)
        try await TestServer.with(configuration: configuration) { server in
            let (port, token) = (server.port, server.admin)
            let started = ContinuousClock.now
            let answer = try await offThread {
                let fd = try Self.connectLocal(port: port)
                defer { close(fd) }
                let head = Array(
                    """
                    POST /streams/slow-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\
                    Content-Type: application/json\r\nContent-Length: 400\r\n\r\n
                    """.utf8)
                _ = head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                // One byte every 100 ms: never idle for the 30 s idle timeout, done only after 40 s.
                var answer: [UInt8] = []
                for byte in Array(String(repeating: " ", count: 400).utf8) {
                    var one = byte
                    if send(fd, &one, 1, Int32(MSG_NOSIGNAL)) <= 0 { break }
                    var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard Glibc.poll(&poll, 1, 100) > 0 else { continue }
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let got = recv(fd, &buffer, buffer.count, 0)
                    if got <= 0 { break }
                    answer += buffer[0..<got]
                }
                return String(decoding: answer, as: UTF8.self)
            }
            let elapsed = ContinuousClock.now - started
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(answer.contains("request-timeout"), "\(answer)")
            #expect(elapsed < .seconds(30), "it took \(elapsed)")
            #expect(try await server.store.streamInfo(try StreamName("slow-1")) == nil)
            #expect(try await server.request(.GET, "/health").status == 200)
        }
    }

    /// Sends one GET over a raw socket and returns the answer's status code.
    static func rawStatus(port: Int, path: String) throws -> Int {
        let fd = try connectLocal(port: port)
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = recv(fd, &buffer, buffer.count, 0)
            if got <= 0 { break }
            answer += buffer[0..<got]
        }
        let line = String(decoding: answer.prefix(while: { $0 != 0x0D }), as: UTF8.self)
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    static func connectLocal(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EventStoreError(.unavailable, "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw EventStoreError(.unavailable, "connect() failed")
        }
        return fd
    }

    /// Sends `bytes` one at a time; true when the server closed the connection before the end.
    static func trickle(port: Int, bytes: [UInt8], every pause: Duration) throws -> Bool {
        let fd = try connectLocal(port: port)
        defer { close(fd) }
        for byte in bytes {
            var one = byte
            if send(fd, &one, 1, Int32(MSG_NOSIGNAL)) <= 0 { return true }
            // A closed peer shows as a readable socket with nothing to read.
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if Glibc.poll(&poll, 1, Int32(pause / .milliseconds(1))) > 0 {
                var buffer = [UInt8](repeating: 0, count: 512)
                if recv(fd, &buffer, buffer.count, 0) <= 0 { return true }
            }
        }
        return false
    }
}
