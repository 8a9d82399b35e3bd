import Annals
import AnnalsWire
import Crypto
import Foundation
import Synchronization

/// What a token may do. Each role includes the ones before it.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Read and subscribe to the streams in scope.
    case reader
    /// Also append to, and delete, the streams in scope.
    case writer
    /// Everything: `$all`, system streams, metadata writes, tokens, statistics.
    case admin

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A bearer token as the server keeps it: never the secret, only its SHA-256.
public struct TokenRecord: Sendable, Hashable, Codable {
    /// A short public id (`tok_…`), shown in lists and used to revoke.
    public var id: String
    public var name: String
    public var role: Role
    /// Stream-name prefixes the token is limited to; empty means every (non-system) stream.
    public var scopes: [String]
    /// Lower-case hex SHA-256 of the whole token string.
    public var hash: String
    public var createdAt: Date

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

extension TokenRecord {
    /// The record as the API shows it: never the hash.
    public func write(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", id)
        writer.member("name", name)
        writer.member("role", role.rawValue)
        writer.key("scopes")
        writer.beginArray()
        for scope in scopes { writer.string(scope) }
        writer.endArray()
        writer.member("createdAt", WireFormat.timestamp(createdAt))
        writer.endObject()
    }

    /// `{"tokens": [...]}`, as `GET /tokens` answers and `annals token list --json` prints.
    public static func listJSON(_ records: [TokenRecord]) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("tokens")
        writer.beginArray()
        for record in records { record.write(into: &writer) }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }
}

/// A token just created: the record, and the secret that is shown once.
public struct CreatedToken: Sendable {
    public var record: TokenRecord
    public var token: String
}

/// Where tokens are kept: a file beside the file store's data, or a table in PostgreSQL.
public protocol TokenRegistry: Sendable {
    func all() async throws -> [TokenRecord]
    func add(_ record: TokenRecord) async throws
    /// Removes a token; false when there was none with that id.
    func revoke(id: String) async throws -> Bool
}

extension TokenRegistry {
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
        let record = TokenRecord(
            id: id, name: name, role: role, scopes: scopes, hash: Tokens.hash(token), createdAt: Date())
        try await add(record)
        return CreatedToken(record: record, token: token)
    }
}

enum Tokens {
    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Base64url text of `bytes` random bytes from the system's secure generator.
    static func randomText(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Tokens in a JSON file (`tokens.json` in the data directory), replaced atomically on every change.
public final class FileTokenRegistry: TokenRegistry {
    public let path: String
    private let lock = Mutex(())

    public init(path: String) {
        self.path = path
    }

    public func all() throws -> [TokenRecord] {
        try lock.withLock { _ in try load() }
    }

    public func add(_ record: TokenRecord) throws {
        try lock.withLock { _ in
            try acrossProcesses {
                var records = try load()
                records.append(record)
                try save(records)
            }
        }
    }

    public func revoke(id: String) throws -> Bool {
        try lock.withLock { _ in
            try acrossProcesses { try revokeLocked(id: id) }
        }
    }

    /// Runs `body` holding an exclusive `flock` on `tokens.json.lock`, so a server and
    /// `annals token` changing tokens at the same moment both land.
    private func acrossProcesses<R>(_ body: () throws -> R) throws -> R {
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw EventStoreError(.unavailable, "The token lock file \(path).lock cannot be opened (errno \(errno)).")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw EventStoreError(
                    .unavailable, "The token lock file \(path).lock cannot be locked (errno \(errno)).")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    private func revokeLocked(id: String) throws -> Bool {
        var records = try load()
        let before = records.count
        records.removeAll { $0.id == id }
        if records.count == before { return false }
        try save(records)
        return true
    }

    private func load() throws -> [TokenRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode([TokenRecord].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EventStoreError(.corruptedStorage, "The token file \(path) cannot be read: \(error).")
        }
    }

    private func save(_ records: [TokenRecord]) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(records)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
        else {
            throw EventStoreError(.unavailable, "The token file \(temporary) cannot be written.")
        }
        let descriptor = open(temporary, O_RDONLY)
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
        }
        guard rename(temporary, path) == 0 else {
            throw EventStoreError(.unavailable, "The token file \(path) cannot be replaced (errno \(errno)).")
        }
    }
}

/// Looks tokens up by hash, re-reading the registry at most once a second (so tokens created or revoked
/// by another process on the same PostgreSQL database take effect within a second).
final class TokenCache: Sendable {
    let registry: any TokenRegistry
    private let state = Mutex<(byHash: [String: TokenRecord], loadedAt: ContinuousClock.Instant?)>(([:], nil))

    init(registry: any TokenRegistry) {
        self.registry = registry
    }

    func invalidate() {
        state.withLock { $0.loadedAt = nil }
    }

    func record(for token: String) async throws -> TokenRecord? {
        let hash = Tokens.hash(token)
        let now = ContinuousClock.now
        let cached: TokenRecord?? = state.withLock { state in
            guard let loadedAt = state.loadedAt, loadedAt.duration(to: now) < .seconds(1) else { return nil }
            return .some(state.byHash[hash])
        }
        if let cached { return cached }
        let records = try await registry.all()
        let byHash = Dictionary(records.map { ($0.hash, $0) }, uniquingKeysWith: { first, _ in first })
        state.withLock { $0 = (byHash, now) }
        return byHash[hash]
    }
}
