import Annals
import Foundation

/// What a token may do. Each role includes the ones before it.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Read and subscribe to the streams in scope.
    case reader
    /// Also append to, and delete, the streams in scope.
    case writer
    /// Everything: `$all`, system streams, metadata writes, tokens, statistics.
    case admin

    /// Whether `lhs` allows less than `rhs`, in the order reader, writer, admin: a route open to a role
    /// is open to every role that is not less than it.
    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A bearer token as the server keeps it: never the secret, only its SHA-256.
public struct TokenRecord: Sendable, Hashable, Codable {
    /// A short public id (`tok_…`), shown in lists and used to revoke.
    public var id: String
    /// The name it was created with, to recognise it by.
    public var name: String
    /// What the token may do.
    public var role: Role
    /// Stream-name prefixes the token is limited to; empty means every (non-system) stream.
    public var scopes: [String]
    /// Lower-case hex SHA-256 of the whole token string.
    public var hash: String
    /// When it was created, to the millisecond (as the API writes times).
    public var createdAt: Date

    /// A record with the given fields. ``TokenRegistry/create(name:role:scopes:)`` makes one with a fresh
    /// id and secret, and is how tokens are normally made.
    public init(id: String, name: String, role: Role, scopes: [String], hash: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.role = role
        self.scopes = scopes
        self.hash = hash
        self.createdAt = createdAt
    }

    /// Whether `stream` lies in the token's scopes (byte-wise prefixes, as stream names compare).
    public func covers(_ stream: StreamName) -> Bool {
        scopes.isEmpty || scopes.contains { stream.rawValue.utf8.starts(with: $0.utf8) }
    }

    /// How a category read is limited for this token: an empty string when every stream of it is in
    /// scope, or the one scope prefix to filter by (a scope `order-` may read category `order`, limited
    /// to streams starting with `order-`).
    ///
    /// - Throws: `forbidden` when no scope covers the category, or when several scopes cover parts of it
    ///   (a read is filtered by one prefix; use a token per scope).
    public func categoryAccess(_ category: String) throws(EventStoreError) -> String {
        if scopes.isEmpty || scopes.contains(where: { category.utf8.starts(with: $0.utf8) }) { return "" }
        let partial = scopes.filter { $0.utf8.starts(with: (category + "-").utf8) }
        guard partial.count == 1 else {
            throw EventStoreError(
                .forbidden,
                partial.isEmpty
                    ? "The token's scopes do not cover category '\(category)'."
                    : "Several of the token's scopes cover parts of category '\(category)'; read its streams one scope at a time."
            )
        }
        return partial[0]
    }
}

/// A token just created: the record, and the secret that is shown once.
public struct CreatedToken: Sendable, Hashable {
    /// The token's record, as its registry keeps it: ``TokenRecord/hash`` is the hash of ``token``.
    public var record: TokenRecord
    /// The secret, shown once; only its hash is kept.
    public var token: String

    /// A created token: its record and its secret.
    public init(record: TokenRecord, token: String) {
        self.record = record
        self.token = token
    }
}

/// Where tokens are kept: a file beside the file store's data, or a table in PostgreSQL.
public protocol TokenRegistry: Sendable {
    /// Every token the registry keeps, in its own order (oldest first in the registries Annals ships).
    /// The server reads this to look tokens up, at most once a second; throws the storage's errors.
    func all() async throws -> [TokenRecord]
    /// Keeps `record` as it is; the caller has made its id and hash (see ``create(name:role:scopes:)``).
    /// A registry may refuse a record whose id or hash it holds already; throws the storage's errors.
    func add(_ record: TokenRecord) async throws
    /// Removes a token; false when there was none with that id.
    func revoke(id: String) async throws -> Bool
}

extension EventStoreError {
    /// `not-found`: no token has this id (a revocation's answer).
    public static func tokenNotFound(id: String) -> EventStoreError {
        EventStoreError(.notFound, "There is no token with id '\(id)'.")
    }
}

/// The body of `POST /tokens`: what the client writes and the server reads.
public struct TokenRequest: Sendable, Hashable {
    /// The token's name: 1 to 128 UTF-8 bytes without control characters (checked when it is created,
    /// not when the request is read).
    public var name: String
    /// What the token may do.
    public var role: Role
    /// Stream-name prefixes; empty for every (non-system) stream. An admin token takes none.
    public var scopes: [String]

    /// A request for a token named `name` with `role`, limited to the stream-name prefixes `scopes`
    /// (empty for every non-system stream).
    public init(name: String, role: Role, scopes: [String] = []) {
        self.name = name
        self.role = role
        self.scopes = scopes
    }

    /// `{"name": …, "role": …, "scopes": […]}`.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("name", name)
        writer.member("role", role.rawValue)
        writer.member("scopes", strings: scopes)
        writer.endObject()
        return writer.bytes
    }

    /// Reads a request body; every refusal is `invalid-argument` (`invalid-json` for bytes that are not
    /// JSON). The values' rules (name length, scope count) are checked when the token is created.
    public init(decoding body: [UInt8]) throws(EventStoreError) {
        let node = try JSONNode.parse(body, maxDepth: 8)
        guard case .object(let members) = node.kind else {
            throw EventStoreError(.invalidArgument, "A token request is a JSON object with name, role and scopes.")
        }
        if let unknown = members.first(where: { !["name", "role", "scopes"].contains($0.key) }) {
            throw EventStoreError(
                .invalidArgument, "Unknown field '\(unknown.key)'; a token has name, role and scopes.")
        }
        guard let name = node["name"]?.stringValue else {
            throw EventStoreError(.invalidArgument, "'name' (a string) is required.")
        }
        guard let role = node["role"]?.stringValue.flatMap(Role.init(rawValue:)) else {
            throw EventStoreError(.invalidArgument, "'role' must be reader, writer or admin.")
        }
        var scopes: [String] = []
        if let list = node["scopes"] {
            guard case .array(let items) = list.kind else {
                throw EventStoreError(.invalidArgument, "'scopes' must be an array of stream-name prefixes.")
            }
            for item in items {
                guard let scope = item.stringValue else {
                    throw EventStoreError(.invalidArgument, "'scopes' must be an array of stream-name prefixes.")
                }
                scopes.append(scope)
            }
        }
        self.init(name: name, role: role, scopes: scopes)
    }
}

extension TokenRegistry {
    /// Creates the token a request asks for (see ``create(name:role:scopes:)``).
    public func create(_ request: TokenRequest) async throws -> CreatedToken {
        try await create(name: request.name, role: request.role, scopes: request.scopes)
    }

    /// On a first start, an admin token to begin with: created when the registry holds no token at all,
    /// and nil when it holds any (revoked ones are gone, so an emptied registry gets a new one).
    ///
    /// Show the secret once, where the operator reads it (`annals serve` prints it when it listens); only
    /// its hash is stored. Two processes starting at once on one registry may both create one.
    public func createFirstAdminToken(name: String = "admin") async throws -> CreatedToken? {
        guard try await all().isEmpty else { return nil }
        return try await create(name: name, role: .admin, scopes: [])
    }

    /// Creates a token with a fresh secret and stores its hash.
    public func create(name: String, role: Role, scopes: [String]) async throws -> CreatedToken {
        guard !name.isEmpty, name.utf8.count <= 128, !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw EventStoreError(.invalidArgument, "A token name is 1–128 bytes without control characters.")
        }
        guard scopes.count <= 64, scopes.allSatisfy({ !$0.isEmpty && $0.utf8.count <= StreamName.maximumByteCount })
        else {
            throw EventStoreError(.invalidArgument, "Scopes are up to 64 non-empty stream-name prefixes.")
        }
        if role == .admin, !scopes.isEmpty {
            throw EventStoreError(.invalidArgument, "An admin token has no scopes: it reaches every stream.")
        }
        let id = "tok_" + Tokens.randomText(bytes: 6)
        let token = "annals_" + id.dropFirst(4) + "_" + Tokens.randomText(bytes: 24)
        // Whole milliseconds, as the API writes it: a list shows the same instant the creation answered.
        let now = Date()
        let createdAt = WireFormat.parseTimestamp(WireFormat.timestamp(now)) ?? now
        let record = TokenRecord(
            id: id, name: name, role: role, scopes: scopes, hash: Tokens.hash(token), createdAt: createdAt)
        try await add(record)
        return CreatedToken(record: record, token: token)
    }
}

/// How tokens are made and looked up.
package enum Tokens {
    /// Lower-case hex SHA-256 of the token's text: what registries store and look up.
    package static func hash(_ token: String) -> String {
        SHA256.hex(token.utf8)
    }

    /// Base64url text of `bytes` random bytes from the system's secure generator.
    package static func randomText(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
