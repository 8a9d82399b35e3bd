import Annals
import AnnalsClient
import AnnalsServer
import AnnalsTesting
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A real server on a free port of 127.0.0.1, over an in-memory store, with one token per role.
struct TestServer: Sendable {
    let url: String
    let port: Int
    let store: any EventStore
    let tokens: [String: String]

    var admin: String { tokens["admin"]! }

    /// Starts a server for `body` and stops it afterwards.
    static func with<R: Sendable>(
        store: any EventStore = try! InMemoryEventStore(),
        configuration: ServerConfiguration = ServerConfiguration(port: 0),
        transport: ServerTransport? = nil,
        _ body: @Sendable (TestServer) async throws -> R
    ) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("annals-srv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let registry = FileTokenRegistry(path: directory.appendingPathComponent("tokens.json").path)
        var tokens: [String: String] = [:]
        tokens["admin"] = try await registry.create(name: "admin", role: .admin, scopes: []).token
        tokens["writer"] = try await registry.create(name: "writer", role: .writer, scopes: []).token
        tokens["reader"] = try await registry.create(name: "reader", role: .reader, scopes: []).token
        tokens["scopedWriter"] = try await registry.create(name: "sw", role: .writer, scopes: ["order-"]).token
        tokens["scopedReader"] = try await registry.create(name: "sr", role: .reader, scopes: ["order-"]).token
        // What /metrics answers here: a fixed text (annals serve's Prometheus scrape is ObservabilityTests').
        let server = try AnnalsServer(
            store: store, tokens: registry, configuration: configuration,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            metrics: MetricsExposition { Array("# metrics of a test server\n".utf8) }, transport: transport)
        let listening = AsyncStream<Int>.makeStream()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run { port in listening.continuation.yield(port) } }
            defer { group.cancelAll() }
            var iterator = listening.stream.makeAsyncIterator()
            guard let port = await iterator.next() else { throw EventStoreError(.unavailable, "no port") }
            let running = TestServer(url: "http://127.0.0.1:\(port)", port: port, store: store, tokens: tokens)
            return try await body(running)
        }
    }

    /// A client store with the admin token.
    func client(token: String? = nil) throws -> RemoteEventStore {
        try RemoteEventStore(url: url, token: token ?? admin)
    }

    /// One raw HTTP exchange: status, headers and body.
    func request(
        _ method: HTTPMethod, _ path: String, token: String? = nil, headers: [String: String] = [:],
        body: [UInt8]? = nil, readsBody: Bool = true
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        // A successful subscription streams until the client leaves: read its status, then leave (the
        // response's body, dropped unread, closes the connection).
        if !readsBody, response.status == .ok { return (Int(response.status.code), response.headers, "") }
        var buffer = try await response.body.collect(upTo: 64 << 20)
        return (
            Int(response.status.code), response.headers,
            buffer.readString(length: buffer.readableBytes) ?? ""
        )
    }
}

/// The conformance harness over a real socket: a fresh server and store per check.
struct RemoteHarness: EventStoreHarness {
    func withStore<R: Sendable>(
        limits: EventStoreLimits, _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R {
        try await TestServer.with(store: try InMemoryEventStore(configuration: .init(limits: limits))) { server in
            try await body(try server.client())
        }
    }
}
