import Annals
import AnnalsServer
import AnnalsWire
import ArgumentParser
import Foundation

#if Client
    import AnnalsClient
#endif
#if Postgres
    import AnnalsPostgres
#endif

/// The token calls the commands make on a running server (the client's typed admin API).
protocol TokenAdmin: Sendable {
    func createToken(name: String, role: Role, scopes: [String]) async throws -> CreatedToken
    func tokens() async throws -> [TokenInfo]
    func revokeToken(id: String) async throws -> Bool
}

#if Client
    extension RemoteEventStore: TokenAdmin {}
#endif

extension StoreOptions {
    /// Where the token commands act: `remote` against a running server (it needs an admin token), or
    /// `local` on the registry beside the store (the data directory must exist).
    func withTokens(
        local: @escaping @Sendable (any TokenRegistry) async throws -> Void,
        remote: @escaping @Sendable (any TokenAdmin) async throws -> Void
    ) async throws {
        switch try StoreChoice.resolve(server: server, token: token, postgres: postgres, data: data) {
        case .server(let url, let token):
            #if Client
                try await remote(try RemoteEventStore(url: url, token: token))
            #else
                _ = (url, token)
                throw Traits.missing("the HTTP client (--server)", trait: "Client")
            #endif
        case .postgres(let url):
            #if Postgres
                var configuration = PostgresEventStore.Configuration()
                configuration.logger.logLevel = logLevel
                try await PostgresEventStore.withStore(url: url, configuration: configuration) { store in
                    try await local(try await PostgresTokenRegistry.make(for: store))
                }
            #else
                _ = url
                throw Traits.missing("PostgreSQL", trait: "Postgres")
            #endif
        case .data(let directory):
            guard FileManager.default.fileExists(atPath: directory) else {
                throw EventStoreError(.notFound, "There is no data directory at \(directory).")
            }
            try await local(FileTokenRegistry(path: directory + "/tokens.json"))
        }
    }
}

extension AnnalsCommand {
    /// `annals token …`: bearer tokens for the server.
    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list and revoke the server's bearer tokens.",
            discussion: """
                Works on a running server (--server URL --token ADMIN), or directly on the tokens kept beside \
                a store (--data DIR, the default, or --postgres URL); a running server sees changes within a second.
                """,
            subcommands: [Create.self, List.self, Revoke.self]
        )

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a token; its secret is printed once.")
            @OptionGroup var place: StoreOptions
            @Option(name: .long, help: "A name to recognise the token by.") var name: String
            @Option(name: .long, help: "reader, writer or admin.") var role: String
            @Option(name: .long, help: "Limit the token to streams starting with this prefix (repeatable).")
            var scope: [String] = []
            @Flag(name: .long, help: "Print JSON instead of text.") var json = false

            func run() async throws {
                try await reportingErrors {
                    guard let role = Role(rawValue: role) else {
                        throw EventStoreError(.invalidArgument, "The role is reader, writer or admin; got '\(role)'.")
                    }
                    let (name, scopes, json) = (name, scope, json)
                    try await place.withTokens(
                        local: { registry in
                            let created = try await registry.create(name: name, role: role, scopes: scopes)
                            Self.show(token: created.token, id: created.record.id, json: json)
                        },
                        remote: { store in
                            let created = try await store.createToken(name: name, role: role, scopes: scopes)
                            Self.show(token: created.token, id: created.record.id, json: json)
                        })
                }
            }

            static func show(token: String, id: String, json: Bool) {
                if json {
                    var writer = JSONWriter()
                    writer.beginObject()
                    writer.member("id", id)
                    writer.member("token", token)
                    writer.endObject()
                    print(String(decoding: writer.bytes, as: UTF8.self))
                } else {
                    print("Created \(id). The token (shown only now):\n\(token)")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
            @OptionGroup var place: StoreOptions
            @Flag(name: .long, help: "Print JSON instead of text.") var json = false

            func run() async throws {
                try await reportingErrors {
                    let json = json
                    try await place.withTokens(
                        local: { registry in Self.show(try await registry.all().map { TokenInfo($0) }, json: json) },
                        remote: { store in Self.show(try await store.tokens(), json: json) })
                }
            }

            /// Prints the tokens: as `GET /tokens` answers them with `--json`, else one line each.
            static func show(_ tokens: [TokenInfo], json: Bool) {
                if json {
                    print(String(decoding: TokenInfo.encodeList(tokens), as: UTF8.self))
                } else {
                    for token in tokens { print(line(token)) }
                }
            }

            /// `tok_…  writer  name  scopes: a-, b-`.
            static func line(_ token: TokenInfo) -> String {
                "\(token.id)  \(token.role.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))  \(token.name)"
                    + (token.scopes.isEmpty ? "" : "  scopes: " + token.scopes.joined(separator: ", "))
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a token by its id (tok_…).")
            @OptionGroup var place: StoreOptions
            @Argument(help: "The token's id.") var id: String

            func run() async throws {
                try await reportingErrors {
                    let id = id
                    try await place.withTokens(
                        local: { registry in
                            guard try await registry.revoke(id: id) else {
                                throw EventStoreError.tokenNotFound(id: id)
                            }
                            print("Revoked \(id).")
                        },
                        remote: { store in
                            guard try await store.revokeToken(id: id) else {
                                throw EventStoreError.tokenNotFound(id: id)
                            }
                            print("Revoked \(id).")
                        })
                }
            }
        }
    }
}
