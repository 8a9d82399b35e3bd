import Annals
import AnnalsWire
import NIOHTTP1

/// The server's administration routes, typed: tokens, statistics and health.
///
/// Every route here but ``health()`` needs an admin token; another token gets ``Annals/EventStoreError``
/// with code `forbidden`, and an unknown one `unauthorized`. Reads (``tokens()``, ``statistics()``) are
/// retried like the store's reads; changes (``createToken(name:role:scopes:)``, ``revokeToken(id:)``) are
/// sent once, since a retry of one the server did carry out would create a second token, or report a
/// revoked one as unknown.
extension RemoteEventStore {
    // MARK: Tokens

    /// Creates a token on the server (`POST /tokens`); the answer holds its secret, which is shown only
    /// this once.
    ///
    /// The record's ``AnnalsWire/TokenRecord/hash`` is computed here from the secret, as the server
    /// computed the one it keeps; the server never sends it.
    ///
    /// - Parameters:
    ///   - name: a name to recognise the token by: 1 to 128 UTF-8 bytes, no control characters.
    ///   - role: what the token may do.
    ///   - scopes: stream-name prefixes to limit it to (up to 64); empty for every non-system stream. An
    ///     admin token takes none.
    /// - Throws: `invalid-argument` for a bad name or scopes, or an admin token with scopes; `forbidden`
    ///   without the admin role; the server's other errors as ``Annals/EventStoreError``.
    public func createToken(name: String, role: Role, scopes: [String] = []) async throws -> CreatedToken {
        let body = TokenRequest(name: name, role: role, scopes: scopes).encoded()
        let answer = try await send(.POST, "/tokens", body: body, retry: false)
        return try CreatedToken(decoding: answer)
    }

    /// The server's tokens (`GET /tokens`), in the order its registry keeps them; never their secrets
    /// or hashes.
    ///
    /// - Throws: `forbidden` without the admin role; the server's other errors as
    ///   ``Annals/EventStoreError``.
    public func tokens() async throws -> [TokenInfo] {
        let answer = try await send(.GET, "/tokens", retry: true)
        return try TokenInfo.decodeList(answer)
    }

    /// Revokes a token by its id (`DELETE /tokens/{id}`): the server refuses it from the next request
    /// on; subscriptions it opened before stay open until they end. A token may revoke itself.
    ///
    /// - Parameter id: the token's public id (`tok_…`), as ``tokens()`` lists it.
    /// - Returns: `true` when the token was revoked; `false` when the server has no token with that id
    ///   (never issued there, or revoked already).
    /// - Throws: `forbidden` without the admin role; the server's other errors as
    ///   ``Annals/EventStoreError``.
    public func revokeToken(id: String) async throws -> Bool {
        // `DELETE /tokens/` would be another route; no token has an empty id.
        guard !id.isEmpty else { return false }
        do {
            _ = try await send(.DELETE, "/tokens/\(Self.encode(id))", retry: false)
            return true
        } catch let error as EventStoreError where error.code == .notFound {
            return false
        }
    }

    // MARK: Operations

    /// The server's statistics (`GET /stats`): the store's head and stream count, and what the server
    /// process has done since it started.
    ///
    /// - Throws: `forbidden` without the admin role; the server's other errors as
    ///   ``Annals/EventStoreError``.
    public func statistics() async throws -> ServerStatistics {
        let answer = try await send(.GET, "/stats", retry: true)
        return try ServerStatistics(decoding: answer)
    }

    /// Whether the server's store can serve (`GET /health`, which needs no token).
    ///
    /// A store that cannot serve is a report, not an error: its ``AnnalsWire/HealthReport/status`` says
    /// how (`failed` for a failed writer, `unavailable` for a closed or unreachable store), with the
    /// store's error code and message. The request is sent once, not retried: a probe reports the
    /// state now.
    ///
    /// - Throws: `unavailable` when the server does not answer, or answers something that is not a
    ///   health report; the server's error when it answers one instead.
    public func health() async throws -> HealthReport {
        let answer = try await send(.GET, "/health", retry: false, alsoAccepting: [503])
        do {
            return try HealthReport(decoding: answer)
        } catch {
            // A 503 in the error shape: a server (or a proxy in front of it) that cannot answer at all.
            if let failure = WireFormat.decodeError(answer) { throw failure }
            throw error
        }
    }
}
