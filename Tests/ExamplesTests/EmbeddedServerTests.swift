import Annals
import AnnalsClient
import AnnalsServer
import AnnalsWire
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@testable import EmbeddedServerExample

/// The embedded-server example over a real socket: the application's routes and Annals' under `/es`.
@Suite("Embedded server example")
struct EmbeddedServerTests {
    @Test("the app's route, Annals' routes under /es with their tokens, 405s and console, the app's 404")
    func mounted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("annals-emb-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = FileTokenRegistry(path: directory + "/tokens.json")
        let admin = try #require(try await tokens.createFirstAdminToken())
        #expect(try await tokens.createFirstAdminToken() == nil, "a registry with a token gets no second first token")
        let store = try InMemoryEventStore()
        let listening = AsyncStream<Int>.makeStream()
        let application = buildApplication(
            store: store, tokens: tokens, port: 0,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { listening.continuation.yield($0) }
        // Redirects not followed: the test looks at them.
        let http = HTTPClient(configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
        defer { Task { [http] in try? await http.shutdown() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.run() }
            defer { group.cancelAll() }
            var ports = listening.stream.makeAsyncIterator()
            let port = try #require(await ports.next())
            let base = "http://127.0.0.1:\(port)"
            func send(_ method: HTTPMethod, _ path: String, token: String? = nil, body: String? = nil) async throws
                -> (status: Int, headers: HTTPHeaders, body: String)
            {
                var request = HTTPClientRequest(url: base + path)
                request.method = method
                if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
                if let body {
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body))
                }
                let response = try await http.execute(request, timeout: .seconds(10))
                var buffer = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), response.headers, buffer.readString(length: buffer.readableBytes)!)
            }

            let hello = try await send(.GET, "/hello")
            #expect(hello.status == 200 && hello.body.hasPrefix("Hello"), "\(hello)")
            #expect(hello.headers["X-Served-By"] == ["embedded-server-example"], "the app's middleware ran")

            let anonymous = try await send(.POST, "/es/streams/greeting-1", body: #"[{"type":"Greeted","data":{}}]"#)
            #expect(anonymous.status == 401, "\(anonymous)")
            #expect(anonymous.body.contains(#""code":"unauthorized""#), "Annals' JSON error body: \(anonymous.body)")
            #expect(
                anonymous.headers["X-Served-By"] == ["embedded-server-example"], "the app's middleware wraps Annals")

            let appended = try await send(
                .POST, "/es/streams/greeting-1", token: admin.token, body: #"[{"type":"Greeted","data":{}}]"#)
            #expect(appended.status == 201, "\(appended)")
            let read = try await send(.GET, "/es/streams/greeting-1", token: admin.token)
            #expect(read.status == 200 && read.body.contains(#""type":"Greeted""#), "\(read)")

            let patch = try await send(.PATCH, "/es/streams/greeting-1", token: admin.token)
            #expect(patch.status == 405, "\(patch)")
            #expect(patch.headers["Allow"] == ["GET, POST, DELETE"], "\(patch.headers)")

            let unknown = try await send(.GET, "/es/nope")
            #expect(unknown.status == 404, "outside Annals' routes the app's router answers: \(unknown)")
            #expect(!unknown.body.contains("route-not-found"), "and not with Annals' error: \(unknown.body)")

            // The console lives at /es/, so its relative URLs resolve under the prefix.
            let bare = try await send(.GET, "/es")
            #expect(bare.status == 302 && bare.headers["Location"] == ["/es/"], "\(bare.status) \(bare.headers)")
            let console = try await send(.GET, "/es/")
            #expect(console.status == 200 && console.body.contains("admin/console.js"), "\(console.status)")
            #expect(!console.body.contains("\"/admin/console.js"), "the console's URLs are relative")
            let script = try await send(.GET, "/es/admin/console.js")
            #expect(script.status == 200, "\(script.status)")

            // The Swift client talks to the mounted routes as to a server of its own.
            let client = try RemoteEventStore(url: base + "/es", token: admin.token)
            #expect(try await client.read(try StreamName("greeting-1")).map(\.type) == ["Greeted"])
        }
    }
}
