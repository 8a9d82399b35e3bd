import Annals
import Foundation

/// A token as the HTTP API shows it: a ``TokenRecord`` without its hash, and never the secret.
///
/// `GET /tokens` answers a list of these, and `POST /tokens` answers one inside ``CreatedToken``'s
/// JSON. In JSON (`docs/http-api.md`, §GET /tokens):
///
/// ```json
/// {"id": "tok_Q2x9aB3c", "name": "admin", "role": "admin", "scopes": [], "createdAt": "2025-01-15T09:30:12.345Z"}
/// ```
public struct TokenInfo: Sendable, Hashable {
    /// The token's short public id (`tok_…`), used to revoke it.
    public var id: String
    /// The name it was created with, to recognise it by.
    public var name: String
    /// What the token may do.
    public var role: Role
    /// Stream-name prefixes the token is limited to; empty means every (non-system) stream.
    public var scopes: [String]
    /// When it was created, to the millisecond.
    public var createdAt: Date

    /// A token description with the given fields.
    public init(id: String, name: String, role: Role, scopes: [String], createdAt: Date) {
        self.id = id
        self.name = name
        self.role = role
        self.scopes = scopes
        self.createdAt = createdAt
    }

    /// What the API shows of `record`: everything but its hash.
    public init(_ record: TokenRecord) {
        self.init(
            id: record.id, name: record.name, role: record.role, scopes: record.scopes, createdAt: record.createdAt)
    }
}

// MARK: JSON

extension TokenInfo {
    /// Writes the token as one JSON object: `id`, `name`, `role`, `scopes`, `createdAt`, in that order.
    public func write(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", id)
        writer.member("name", name)
        writer.member("role", role.rawValue)
        writer.member("scopes", strings: scopes)
        writer.member("createdAt", WireFormat.timestamp(createdAt))
        writer.endObject()
    }

    /// Reads one token object, as ``write(into:)`` writes it, from `node` inside `body` (the client's
    /// side). Members it does not know are ignored.
    ///
    /// - Throws: `unavailable` when a member is missing or malformed, or the role is not one this
    ///   client knows.
    public init(decoding node: JSONNode, in body: [UInt8]) throws(EventStoreError) {
        let reader = try AnswerReader(node, in: body, answer: "token")
        let roleName = try reader.string("role")
        guard let role = Role(rawValue: roleName) else {
            throw reader.malformed("role", expected: "reader, writer or admin; got '\(roleName)'")
        }
        self.init(
            id: try reader.string("id"), name: try reader.string("name"), role: role,
            scopes: try reader.strings("scopes"), createdAt: try reader.timestamp("createdAt"))
    }

    /// `{"tokens": [...]}`: the answer to `GET /tokens`, which `annals token list --json` prints too.
    public static func encodeList(_ tokens: [TokenInfo]) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("tokens")
        writer.beginArray()
        for token in tokens { token.write(into: &writer) }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }

    /// Reads the answer to `GET /tokens`, as ``encodeList(_:)`` writes it (the client's side).
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `unavailable` when it is not a token list.
    public static func decodeList(_ body: [UInt8]) throws(EventStoreError) -> [TokenInfo] {
        let reader = try AnswerReader(parsing: body, answer: "token list")
        var tokens: [TokenInfo] = []
        for item in try reader.array("tokens") {
            tokens.append(try TokenInfo(decoding: item, in: body))
        }
        return tokens
    }
}

extension CreatedToken {
    /// What the API shows of the token's record: everything but its hash.
    public var info: TokenInfo { TokenInfo(record) }

    /// `{"token": "annals_…", "record": {…}}`: the answer to `POST /tokens`, the only time the secret is
    /// shown. The record is written as ``TokenInfo/write(into:)`` writes it, without its hash.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("token", token)
        writer.key("record")
        info.write(into: &writer)
        writer.endObject()
        return writer.bytes
    }

    /// Reads the answer to `POST /tokens`, as ``encoded()`` writes it (the client's side). The answer
    /// carries no hash: the record's ``TokenRecord/hash`` is computed from the secret, as the server
    /// computed the one it keeps.
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `unavailable` when it is not a created token.
    public init(decoding body: [UInt8]) throws(EventStoreError) {
        let reader = try AnswerReader(parsing: body, answer: "created token")
        let token = try reader.string("token")
        guard let record = reader.node["record"] else {
            throw reader.malformed("record", expected: "a token object")
        }
        let info = try TokenInfo(decoding: record, in: body)
        self.init(
            record: TokenRecord(
                id: info.id, name: info.name, role: info.role, scopes: info.scopes, hash: Tokens.hash(token),
                createdAt: info.createdAt),
            token: token)
    }
}
