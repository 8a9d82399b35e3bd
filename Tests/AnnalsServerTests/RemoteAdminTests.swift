import Annals
import AnnalsClient
import AnnalsTestSupport
import AnnalsWire
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// `RemoteEventStore`'s admin API (tokens, statistics, health) against a real server over a socket,
/// and the `annals token` commands that use it.
@Suite("The client's admin API against a real server")
struct RemoteAdminTests {
    /// A new event (a fresh id) each time.
    static var placed: EventData { EventData(type: "OrderPlaced", data: Data(#"{"total":12}"#.utf8)) }
    /// A new event (a fresh id) each time.
    static var shipped: EventData { EventData(type: "OrderShipped", data: Data(#"{"carrier":"post"}"#.utf8)) }

    @Test(
        "creates a token that works, lists it as created, revokes it once, and the server refuses it after",
        .timeLimit(.minutes(2)))
    func tokenLifecycle() async throws {
        try await TestServer.with { server in
            let admin = try server.client()
            let created = try await admin.createToken(name: "billing", role: .writer, scopes: ["invoice-", "payment-"])
            #expect(created.token.hasPrefix("annals_"), "\(created.token)")
            #expect(created.record.id.hasPrefix("tok_"), "\(created.record.id)")
            #expect(created.record.name == "billing")
            #expect(created.record.role == .writer)
            #expect(created.record.scopes == ["invoice-", "payment-"])
            #expect(created.record.hash == SHA256.hex(created.token.utf8), "the hash the server keeps")

            let listed = try await admin.tokens()
            #expect(listed.count == server.tokens.count + 1, "\(listed)")
            #expect(
                listed.first { $0.id == created.record.id } == created.info,
                "the list shows the token as the creation answered it, createdAt to the millisecond")
            #expect(Set(listed.map(\.name)).isSuperset(of: ["admin", "writer", "reader", "sw", "sr", "billing"]))

            let billing = try server.client(token: created.token)
            try await billing.append([Self.placed], to: try StreamName("invoice-1"))

            #expect(try await admin.revokeToken(id: created.record.id))
            #expect(!(try await admin.revokeToken(id: created.record.id)), "revoked already")
            #expect(!(try await admin.revokeToken(id: "tok_neverIssued")))
            #expect(!(try await admin.revokeToken(id: "")))
            #expect(try await admin.tokens().allSatisfy { $0.id != created.record.id })

            let refused = await #expect(throws: EventStoreError.self) {
                _ = try await billing.append([Self.placed], to: try StreamName("invoice-1"))
            }
            #expect(refused?.code == .unauthorized, "\(String(describing: refused))")
        }
    }

    @Test("a token request the server refuses comes back as its typed error", .timeLimit(.minutes(2)))
    func refusedCreation() async throws {
        try await TestServer.with { server in
            let admin = try server.client()
            let scopedAdmin = await #expect(throws: EventStoreError.self) {
                _ = try await admin.createToken(name: "root", role: .admin, scopes: ["order-"])
            }
            #expect(scopedAdmin?.code == .invalidArgument, "\(String(describing: scopedAdmin))")
            let unnamed = await #expect(throws: EventStoreError.self) {
                _ = try await admin.createToken(name: "", role: .reader)
            }
            #expect(unnamed?.code == .invalidArgument, "\(String(describing: unnamed))")
            #expect(try await admin.tokens().count == server.tokens.count, "nothing was created")
        }
    }

    @Test("the token list decodes and encodes back to the bytes the server sent", .timeLimit(.minutes(2)))
    func tokenListBytes() async throws {
        try await TestServer.with { server in
            let admin = try server.client()
            _ = try await admin.createToken(
                name: "quote \" backslash \\ delete \u{7F} é 🦆", role: .reader, scopes: ["a/b-"])
            let raw = try await server.request(.GET, "/tokens", token: server.admin)
            #expect(raw.status == 200)
            let bytes = Array(raw.body.utf8)
            let decoded = try TokenInfo.decodeList(bytes)
            #expect(TokenInfo.encodeList(decoded) == bytes, "\(raw.body)")
            #expect(decoded.contains { $0.name == "quote \" backslash \\ delete \u{7F} é 🦆" }, "\(decoded)")
            let fetched = try await admin.tokens()
            #expect(decoded == fetched)
        }
    }

    @Test("statistics count the appends, events and bytes this server wrote", .timeLimit(.minutes(2)))
    func statistics() async throws {
        try await TestServer.with { server in
            let admin = try server.client()
            let fresh = try await admin.statistics()
            #expect(fresh.headPosition == Position(0))
            #expect(fresh.streams == 0 && fresh.appends == 0 && fresh.eventsWritten == 0 && fresh.bytesWritten == 0)

            try await admin.append([Self.placed, Self.shipped], to: try StreamName("order-1"))
            try await admin.append([Self.placed], to: try StreamName("order-2"))
            let statistics = try await admin.statistics()
            #expect(statistics.headPosition == Position(3))
            #expect(statistics.streams == 2)
            #expect(statistics.appends == 2)
            #expect(statistics.eventsWritten == 3)
            #expect(statistics.bytesWritten == UInt64(2 * Self.placed.byteCount + Self.shipped.byteCount))
            #expect(statistics.liveSubscriptions == 0)
            #expect(statistics.store == "InMemoryEventStore")
            #expect(statistics.version == AnnalsVersion.current)

            let raw = try await server.request(.GET, "/stats", token: server.admin)
            #expect(raw.status == 200)
            let decoded = try ServerStatistics(decoding: Array(raw.body.utf8))
            // The latency is of the last whole second, so it may move between the two requests.
            var comparable = decoded
            comparable.appendLatencyMicroseconds = statistics.appendLatencyMicroseconds
            #expect(comparable == statistics)
            #expect(
                decoded.encoded() == Array(raw.body.utf8),
                "the client reads back every member the server wrote: \(raw.body)")
        }
    }

    @Test("health needs no token and reports the head", .timeLimit(.minutes(2)))
    func healthy() async throws {
        try await TestServer.with { server in
            try await server.client().append([Self.placed], to: try StreamName("order-1"))
            let report = try await RemoteEventStore(url: server.url, token: nil).health()
            #expect(report.isHealthy)
            #expect(report == HealthReport(status: .ok, headPosition: Position(1)))
            #expect(try await server.client(token: server.tokens["reader"]).health() == report)
        }
    }

    @Test("health reports a store that cannot be reached as a report, not an error", .timeLimit(.minutes(2)))
    func unreachable() async throws {
        try await TestServer.with(store: UnreachableStore()) { server in
            let report = try await RemoteEventStore(url: server.url, token: nil).health()
            #expect(!report.isHealthy)
            #expect(report.status == .unavailable)
            #expect(report.headPosition == nil)
            #expect(report.code == .unavailable)
            // The text is the server's to choose (a stable sentence, not the store's own words).
            #expect(report.message?.isEmpty == false, "\(report)")
        }
    }

    @Test(
        "a token without the admin role gets forbidden from every admin route",
        .timeLimit(.minutes(2)), arguments: ["reader", "writer", "scopedWriter", "scopedReader"])
    func forbidden(_ role: String) async throws {
        try await TestServer.with { server in
            let token: String = try #require(server.tokens[role])
            let client = try server.client(token: token)
            let created = await #expect(throws: EventStoreError.self) {
                _ = try await client.createToken(name: "escalate", role: .admin)
            }
            #expect(created?.code == .forbidden, "\(role) createToken: \(String(describing: created))")
            let listed = await #expect(throws: EventStoreError.self) { _ = try await client.tokens() }
            #expect(listed?.code == .forbidden, "\(role) tokens: \(String(describing: listed))")
            let revoked = await #expect(throws: EventStoreError.self) {
                _ = try await client.revokeToken(id: "tok_anything")
            }
            #expect(revoked?.code == .forbidden, "\(role) revokeToken: \(String(describing: revoked))")
            let statistics = await #expect(throws: EventStoreError.self) { _ = try await client.statistics() }
            #expect(statistics?.code == .forbidden, "\(role) statistics: \(String(describing: statistics))")
            #expect(try await client.health().isHealthy, "health needs no role")
            #expect(try await server.client().tokens().count == server.tokens.count, "nothing was created")
        }
    }

    @Test("a token the server does not know gets unauthorized", .timeLimit(.minutes(2)))
    func unknownToken() async throws {
        try await TestServer.with { server in
            let client = try server.client(token: "annals_Q2x9aB3c_3vX0bq5m7kTtq0wz8yYb1nJc4Hq2d6Rs")
            let statistics = await #expect(throws: EventStoreError.self) { _ = try await client.statistics() }
            #expect(statistics?.code == .unauthorized, "\(String(describing: statistics))")
        }
    }

    @Test(
        "annals token against a server prints what it prints on the registry beside the store",
        .timeLimit(.minutes(2)))
    func commandsOverHTTP() async throws {
        let data = NSTemporaryDirectory() + "annals-admin-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, url, printed) = try await Child.serve(data: data)
        let admin = try #require(printed)
        let remote = ["--server", url, "--token", admin]
        let local = ["--data", data]

        let created = try Child(
            arguments: [
                "token", "create", "--name", "billing", "--role", "writer", "--scope", "invoice-", "--scope",
                "payment-",
            ] + remote)
        #expect((try await created.exit()) == 0, "\(created.output)")
        #expect(
            created.output.wholeMatch(of: /Created tok_[A-Za-z0-9_-]{8}\. The token \(shown only now\):\nannals_\S+\n/)
                != nil, "\(created.output)")
        let createdJSON = try Child(
            arguments: ["token", "create", "--name", "reports", "--role", "reader", "--json"] + remote)
        #expect((try await createdJSON.exit()) == 0, "\(createdJSON.output)")
        #expect(
            createdJSON.output.wholeMatch(of: /\{"id":"tok_[A-Za-z0-9_-]{8}","token":"annals_[A-Za-z0-9_-]+"\}\n/)
                != nil, "\(createdJSON.output)")

        for format in [[], ["--json"]] {
            let overHTTP = try Child(arguments: ["token", "list"] + format + remote)
            let beside = try Child(arguments: ["token", "list"] + format + local)
            #expect((try await overHTTP.exit()) == 0, "\(overHTTP.output)")
            #expect((try await beside.exit()) == 0, "\(beside.output)")
            #expect(overHTTP.output == beside.output, "token list \(format)")
            #expect(overHTTP.output.contains("billing") && overHTTP.output.contains("reports"), "\(overHTTP.output)")
        }
        // `--json` prints the server's answer byte for byte.
        var request = HTTPClientRequest(url: url + "/tokens")
        request.headers.add(name: "Authorization", value: "Bearer \(admin)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        var body = try await response.body.collect(upTo: 1 << 20)
        let answer = body.readString(length: body.readableBytes) ?? ""
        let listed = try Child(arguments: ["token", "list", "--json"] + remote)
        #expect((try await listed.exit()) == 0)
        #expect(listed.output == answer + "\n")

        let missingOverHTTP = try Child(arguments: ["token", "revoke", "tok_missing1"] + remote)
        let missingBeside = try Child(arguments: ["token", "revoke", "tok_missing1"] + local)
        #expect((try await missingOverHTTP.exit()) == 2)
        #expect((try await missingBeside.exit()) == 2)
        #expect(missingOverHTTP.output == "annals: not-found: There is no token with id 'tok_missing1'.\n")
        #expect(missingOverHTTP.output == missingBeside.output)

        let id = try #require(created.output.firstMatch(of: /tok_[A-Za-z0-9_-]{8}/).map { String($0.0) })
        let revoked = try Child(arguments: ["token", "revoke", id] + remote)
        #expect((try await revoked.exit()) == 0, "\(revoked.output)")
        #expect(revoked.output == "Revoked \(id).\n")

        server.signal(SIGTERM)
        #expect((try await server.exit()) == 0)
    }
}

/// A store whose storage cannot be reached, as a PostgreSQL store whose database is down: every call
/// throws `unavailable`.
struct UnreachableStore: EventStore {
    static let failure = EventStoreError(.unavailable, "The database cannot be reached.")

    /// A subscription that fails at once.
    struct FailingSource: EventSubscriptionSource {
        mutating func next() async throws -> RecordedEvent? { throw UnreachableStore.failure }
    }

    func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision) async throws
        -> AppendResult
    {
        throw Self.failure
    }

    func read(_ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int) async throws
        -> [RecordedEvent]
    {
        throw Self.failure
    }

    func readAll(from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int) async throws
        -> [RecordedEvent]
    {
        throw Self.failure
    }

    func streamInfo(_ stream: StreamName) async throws -> StreamInfo? { throw Self.failure }
    func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] { throw Self.failure }
    func streamCount() async throws -> UInt64 { throw Self.failure }
    func headPosition() async throws -> Position { throw Self.failure }
    func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws { throw Self.failure }
    func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws { throw Self.failure }
    func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws { throw Self.failure }

    func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        EventSubscription { FailingSource() }
    }
}
