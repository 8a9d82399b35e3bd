import Annals
import AnnalsServer
import AnnalsTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Testing

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

/// A store whose writer failed is not healthy: the audit saw `/health` answer `200 ok` after a full
/// disk while every append got `503 store-failed`.
@Suite("Health of a failed file store")
struct HealthTests {
    @Test("after ENOSPC on a write, checkHealth throws store-failed and /health answers 503 failed")
    func fullDisk() async throws {
        // How many writes opening a store makes, so the fault lands on the first append's.
        let probe = TemporaryDirectory()
        let counting = FaultyFileIO()
        let opened = try FileEventStore.open(at: probe.path, configuration: .tiny(), io: counting)
        let writesToOpen = counting.writeCount
        await opened.close()
        probe.remove()

        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var plan = FaultyFileIO.Plan()
        plan.failWrite = writesToOpen + 1
        plan.writeError = ENOSPC
        let store = try FileEventStore.open(at: directory.path, configuration: .tiny(), io: FaultyFileIO(plan))
        let server = try AnnalsServer(
            store: store, tokens: FileTokenRegistry(path: directory.path + "/tokens.json"))

        func health() async throws -> (status: Int, body: String) {
            let request = Request(
                head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/health"),
                body: RequestBody(buffer: ByteBuffer()))
            let response = await server.respond(to: request)
            let collector = BodyCollector()
            try await response.body.write(collector)
            return (response.status.code, String(decoding: collector.bytes, as: UTF8.self))
        }

        let before = try await health()
        #expect(before.status == 200, "\(before.body)")
        #expect(before.body.contains(#""status":"ok""#), "\(before.body)")

        await #expect(throws: EventStoreError.self) {
            try await store.append([EventData(type: "T", data: Data("{}".utf8))], to: try StreamName("disk-1"))
        }
        do {
            try await store.checkHealth()
            Issue.record("a store whose write failed reports healthy")
        } catch let error as EventStoreError {
            #expect(error.code == .storeFailed, "\(error)")
        }
        let after = try await health()
        #expect(after.status == 503, "\(after.body)")
        #expect(after.body.contains(#""status":"failed""#), "\(after.body)")
        #expect(after.body.contains(#""code":"store-failed""#), "\(after.body)")
        await store.close()
    }
}

/// Collects a response body's bytes.
final class BodyCollector: ResponseBodyWriter, @unchecked Sendable {
    var bytes: [UInt8] = []

    func write(_ buffer: ByteBuffer) async throws {
        bytes += buffer.readableBytesView
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
