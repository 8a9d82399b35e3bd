import Annals
import AnnalsTestSupport
import AnnalsWire
import Foundation
import Hummingbird
import NIOCore
import Synchronization
import Testing

@testable import AnnalsServer

#if canImport(Glibc)
    import Glibc
#endif

/// NDJSON reads hold a bounded number of bytes per reader, and a token holds a bounded number of them.
@Suite("Streaming reads")
struct StreamingReadTests {
    @Test("a page holds about the budget in bytes: one event first, then as many as fit, at most 512")
    func pageSizes() {
        #expect(NDJSONPaging.pageSize(averageEventBytes: 0, budget: 1 << 20) == 1)
        #expect(NDJSONPaging.pageSize(averageEventBytes: 1 << 20, budget: 1 << 20) == 1)
        #expect(NDJSONPaging.pageSize(averageEventBytes: 3 << 20, budget: 1 << 20) == 1)
        #expect(NDJSONPaging.pageSize(averageEventBytes: 256 << 10, budget: 1 << 20) == 4)
        #expect(NDJSONPaging.pageSize(averageEventBytes: 200, budget: 1 << 20) == 512)
    }

    /// A writer that counts what it was given.
    final class CountingWriter: ResponseBodyWriter, @unchecked Sendable {
        var lines = 0
        func write(_ buffer: ByteBuffer) async throws { lines += 1 }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    @Test("with 256 KiB events and a 1 MiB budget, no page asks the store for more than about 1 MiB")
    func boundedPages() async throws {
        let event = RecordedEvent(
            id: UUID(), type: "Big", data: Data(repeating: UInt8(ascii: "a"), count: 256 << 10), contentType: .binary,
            metadata: Data(), stream: try StreamName("big-1"), revision: StreamRevision(0), position: Position(0),
            recordedAt: Date())
        let sizes = Mutex<[Int]>([])
        let counting = CountingWriter()
        var writer: any ResponseBodyWriter = counting
        try await NDJSONPaging.stream(
            from: UInt64(0), limit: 40, budget: 1 << 20, following: { _ in UInt64(1) },
            read: { _, count in
                sizes.withLock { $0.append(count) }
                return Array(repeating: event, count: count)
            }, into: &writer)
        let asked = sizes.withLock { $0 }
        #expect(asked.first == 1, "one event first, to learn the size: \(asked)")
        // Each line is about 350 KiB (base64), so a 1 MiB page holds 2 of them.
        #expect(asked.dropFirst().allSatisfy { $0 <= 3 }, "\(asked)")
        #expect(asked.reduce(0, +) == 40)
        #expect(counting.lines == 40, "each event is written on its own")
    }

    @Test(
        "a token holds at most streamingReadsPerToken NDJSON reads; a closed one frees its slot",
        .timeLimit(.minutes(1)))
    func slotsPerToken() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.streamingReadsPerToken = 1
        configuration.streamingReadBufferBytes = 64 << 10
        try await TestServer.with(configuration: configuration) { server in
            // 24 MiB of events: far more than the socket buffers, so a reader that does not read stays open.
            let big = String(repeating: "a", count: 600_000)
            for index in 0..<40 {
                let answer = try await server.request(
                    .POST, "/streams/big-1", token: server.admin, headers: ["Content-Type": "application/json"],
                    body: Array(#"[{"type":"Big","data":{"n":\#(index),"pad":"\#(big)"}}]"#.utf8))
                #expect(answer.status == 201)
            }
            let (port, token) = (server.port, server.admin)
            let held = try BadInputTests.connectLocal(port: port)
            let request = Array(
                "GET /streams/big-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nAccept: application/x-ndjson\r\n\r\n"
                    .utf8)
            _ = request.withUnsafeBytes { send(held, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // Read its head, so the read has begun, then stop reading.
            var first = [UInt8](repeating: 0, count: 1_024)
            #expect(recv(held, &first, first.count, 0) > 0)
            let second = try await server.request(
                .GET, "/streams/big-1", token: server.admin, headers: ["Accept": "application/x-ndjson"])
            #expect(second.status == 429, "\(second.body.prefix(200))")
            #expect(second.body.contains("too-many-streaming-reads"), "\(second.body.prefix(200))")
            // A JSON page is not a streaming read.
            #expect(try await server.request(.GET, "/streams/big-1?limit=1", token: server.admin).status == 200)
            close(held)
            // The slot comes back once the server notices the reader left.
            let started = ContinuousClock.now
            var status = 0
            while ContinuousClock.now - started < .seconds(20) {
                status = try await server.request(
                    .GET, "/streams/big-1?limit=2", token: server.admin, headers: ["Accept": "application/x-ndjson"]
                ).status
                if status == 200 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == 200, "the slot of a closed reader is released")
        }
    }
}
