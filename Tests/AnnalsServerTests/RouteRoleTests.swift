import Annals
import AnnalsServer
import AnnalsWire
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// Every route, asked by every kind of caller, answers what the access rules say.
@Suite("Routes × roles")
struct RouteRoleTests {
    enum Need {
        case none, reader, writer, admin
    }

    struct Route: Sendable, CustomStringConvertible {
        var method: HTTPMethod
        var path: String
        var body: String?
        /// The least role that may call it.
        var need: Need
        /// Whether a token scoped to `order-` may call it (given the role).
        var inScope: Bool
        var success: Int
        /// An answer that streams until the client leaves (a subscription): only its status is read.
        var streams = false

        var description: String { "\(method.rawValue) \(path)" }
    }

    static let event = #"[{"type":"T","data":{}}]"#

    static let routes: [Route] = [
        Route(method: .GET, path: "/", need: .none, inScope: true, success: 200),
        Route(method: .GET, path: "/admin/console.js", need: .none, inScope: true, success: 200),
        Route(method: .GET, path: "/admin/console.css", need: .none, inScope: true, success: 200),
        Route(method: .GET, path: "/health", need: .none, inScope: true, success: 200),
        Route(method: .GET, path: "/metrics", need: .admin, inScope: false, success: 200),
        Route(method: .GET, path: "/stats", need: .admin, inScope: false, success: 200),
        Route(method: .GET, path: "/head", need: .reader, inScope: true, success: 200),
        Route(method: .GET, path: "/streams", need: .reader, inScope: true, success: 200),
        Route(method: .POST, path: "/streams/order-1", body: event, need: .writer, inScope: true, success: 201),
        Route(method: .POST, path: "/streams/user-1", body: event, need: .writer, inScope: false, success: 201),
        Route(method: .GET, path: "/streams/order-1", need: .reader, inScope: true, success: 200),
        Route(method: .GET, path: "/streams/user-1", need: .reader, inScope: false, success: 200),
        Route(method: .GET, path: "/streams/%24system", need: .admin, inScope: false, success: 200),
        Route(method: .GET, path: "/streams/order-1/metadata", need: .reader, inScope: true, success: 200),
        Route(method: .GET, path: "/streams/user-1/metadata", need: .reader, inScope: false, success: 200),
        Route(
            method: .PUT, path: "/streams/order-1/metadata", body: #"{"maxCount":10}"#, need: .admin, inScope: false,
            success: 200),
        Route(method: .DELETE, path: "/streams/order-2", need: .writer, inScope: true, success: 204),
        Route(method: .DELETE, path: "/streams/user-2", need: .writer, inScope: false, success: 204),
        Route(method: .GET, path: "/categories/order", need: .reader, inScope: true, success: 200),
        Route(method: .GET, path: "/categories/user", need: .reader, inScope: false, success: 200),
        Route(method: .GET, path: "/all", need: .admin, inScope: false, success: 200),
        Route(method: .GET, path: "/tokens", need: .admin, inScope: false, success: 200),
        Route(
            method: .POST, path: "/tokens", body: #"{"name":"t","role":"reader"}"#, need: .admin, inScope: false,
            success: 201),
        Route(method: .DELETE, path: "/tokens/tok_missing", need: .admin, inScope: false, success: 404),
        Route(method: .GET, path: "/subscribe/all", need: .admin, inScope: false, success: 200, streams: true),
        Route(
            method: .GET, path: "/subscribe/streams/order-1", need: .reader, inScope: true, success: 200, streams: true),
        Route(
            method: .GET, path: "/subscribe/streams/user-1", need: .reader, inScope: false, success: 200, streams: true),
        Route(
            method: .GET, path: "/subscribe/categories/order", need: .reader, inScope: true, success: 200, streams: true
        ),
        Route(
            method: .GET, path: "/subscribe/categories/user", need: .reader, inScope: false, success: 200, streams: true
        ),
    ]

    static func need(_ access: RouteSpec.Access) -> Need {
        switch access {
        case .public: .none
        case .atLeast(.reader): .reader
        case .atLeast(.writer): .writer
        case .atLeast(.admin): .admin
        }
    }

    /// The table entry a sample request lands on.
    static func spec(of route: Route) -> RouteSpec? {
        let path = route.path.split(separator: "?").first.map(String.init) ?? route.path
        return RouteTable.all.first {
            $0.method.rawValue == route.method.rawValue && $0.matches(path.split(separator: "/"))
        }
    }

    @Test("every route in the table has a sample here, with the table's role; every sample is in the table")
    func coversTheTable() {
        for spec in RouteTable.all {
            let samples = Self.routes.filter { Self.spec(of: $0) == spec }
            #expect(!samples.isEmpty, "no sample request for \(spec) (\(spec.id))")
            for sample in samples {
                // A system stream (`$…`) needs admin whatever the route's role.
                let expected = sample.path.contains("%24") ? .admin : Self.need(spec.access)
                #expect(sample.need == expected, "\(sample) needs \(spec.access)")
            }
            // A scoped route below admin is asked both in and out of a token's scopes (admin tokens
            // have no scopes).
            if spec.scope == .stream || spec.scope == .category, spec.access != .atLeast(.admin) {
                #expect(Set(samples.map(\.inScope)) == [true, false], "\(spec) in and out of scope")
            }
        }
        for route in Self.routes { #expect(Self.spec(of: route) != nil, "\(route) is in no table entry") }
    }

    struct Caller: Sendable {
        var name: String
        var role: Need
        var scoped: Bool
    }

    static let callers: [Caller] = [
        Caller(name: "none", role: .none, scoped: false),
        Caller(name: "reader", role: .reader, scoped: false),
        Caller(name: "writer", role: .writer, scoped: false),
        Caller(name: "admin", role: .admin, scoped: false),
        Caller(name: "scopedReader", role: .reader, scoped: true),
        Caller(name: "scopedWriter", role: .writer, scoped: true),
    ]

    static func rank(_ need: Need) -> Int {
        switch need {
        case .none: 0
        case .reader: 1
        case .writer: 2
        case .admin: 3
        }
    }

    @Test("every route × every role", .timeLimit(.minutes(2)))
    func matrix() async throws {
        try await TestServer.with { server in
            // Streams the routes read must exist.
            for stream in ["order-1", "user-1"] {
                _ = try await server.request(
                    .POST, "/streams/\(stream)", token: server.admin, headers: ["Content-Type": "application/json"],
                    body: Array(Self.event.utf8))
            }
            for route in Self.routes {
                for caller in Self.callers {
                    let token = caller.role == .none ? nil : server.tokens[caller.name]
                    let answer = try await server.request(
                        route.method, route.path, token: token,
                        headers: route.body == nil ? [:] : ["Content-Type": "application/json"],
                        body: route.body.map { Array($0.utf8) }, readsBody: !route.streams)
                    let expected: Int
                    if route.need == .none {
                        expected = route.success
                    } else if caller.role == .none {
                        expected = 401
                    } else if Self.rank(caller.role) < Self.rank(route.need) {
                        expected = 403
                    } else if caller.scoped && !route.inScope {
                        expected = 403
                    } else {
                        expected = route.success
                    }
                    #expect(
                        answer.status == expected,
                        "\(route) as \(caller.name): \(answer.status) \(answer.body.prefix(200))")
                    if answer.status >= 400 {
                        #expect(answer.body.contains("\"code\""), "\(route) as \(caller.name): no JSON error")
                    }
                }
            }
        }
    }

    @Test("a revoked token is refused at once; an unknown one is 401")
    func revocation() async throws {
        try await TestServer.with { server in
            let created = try await server.request(
                .POST, "/tokens", token: server.admin, headers: ["Content-Type": "application/json"],
                body: Array(#"{"name":"temp","role":"reader"}"#.utf8))
            #expect(created.status == 201)
            let node = try JSONSerialization.jsonObject(with: Data(created.body.utf8)) as? [String: Any]
            let token = try #require(node?["token"] as? String)
            let id = try #require((node?["record"] as? [String: Any])?["id"] as? String)
            #expect(try await server.request(.GET, "/head", token: token).status == 200)
            #expect(try await server.request(.DELETE, "/tokens/\(id)", token: server.admin).status == 204)
            #expect(try await server.request(.GET, "/head", token: token).status == 401)
            #expect(try await server.request(.GET, "/head", token: "annals_nope").status == 401)
            #expect(try await server.request(.GET, "/head", headers: ["Authorization": "Basic abc"]).status == 401)
            let list = try await server.request(.GET, "/tokens", token: server.admin)
            #expect(!list.body.contains("hash") && !list.body.contains("annals_"), "token lists never show secrets")
        }
    }
}
