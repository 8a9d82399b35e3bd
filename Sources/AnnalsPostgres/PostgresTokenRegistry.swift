import Annals
import AnnalsWire
import Foundation
import Logging
import PostgresNIO

/// Tokens in the table `tokens` of the store's schema, shared by every server on the database.
public struct PostgresTokenRegistry: TokenRegistry {
    let client: PostgresClient
    let table: String
    let logger: Logger

    /// Uses the store's client and schema; creates the table when it is missing.
    public static func make(for store: PostgresEventStore) async throws -> PostgresTokenRegistry {
        let registry = PostgresTokenRegistry(
            client: store.client, table: "\"\(store.configuration.schema)\".tokens", logger: store.configuration.logger)
        do {
            try await registry.client.query(
                """
                CREATE TABLE IF NOT EXISTS \(unescaped: registry.table) (
                    id text PRIMARY KEY, name text NOT NULL, role text NOT NULL, scopes text[] NOT NULL,
                    hash text NOT NULL UNIQUE, created_at timestamptz NOT NULL)
                """, logger: registry.logger)
        } catch {
            throw EventStoreError(.unavailable, "The token table cannot be created: \(String(reflecting: error)).")
        }
        return registry
    }

    /// Every token, oldest first; a row with a role this version does not know is left out.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/unavailable`` when PostgreSQL fails.
    public func all() async throws -> [TokenRecord] {
        do {
            var records: [TokenRecord] = []
            let rows = try await client.query(
                "SELECT id, name, role, scopes, hash, created_at FROM \(unescaped: table) ORDER BY created_at",
                logger: logger)
            for try await (id, name, role, scopes, hash, createdAt) in rows.decode(
                (String, String, String, [String], String, Date).self)
            {
                guard let role = Role(rawValue: role) else { continue }
                records.append(
                    TokenRecord(id: id, name: name, role: role, scopes: scopes, hash: hash, createdAt: createdAt))
            }
            return records
        } catch {
            throw EventStoreError(.unavailable, "Reading tokens failed: \(String(reflecting: error)).")
        }
    }

    // Writes run in explicit transactions: postgres-nio reports a statement done at CommandComplete,
    // before an autocommit statement's commit is durable; a COMMIT answers once it is.

    /// Stores `record` in a transaction of its own, durable when it returns; every server on the
    /// database sees it at its next read of the registry.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/unavailable`` when PostgreSQL fails, or the id or hash is
    ///   taken.
    public func add(_ record: TokenRecord) async throws {
        do {
            _ = try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO \(unescaped: table) (id, name, role, scopes, hash, created_at)
                    VALUES (\(record.id), \(record.name), \(record.role.rawValue), \(record.scopes), \(record.hash),
                            \(record.createdAt))
                    """, logger: logger)
            }
        } catch {
            throw EventStoreError(.unavailable, "Storing a token failed: \(String(reflecting: error)).")
        }
    }

    /// Removes the token with `id`, in a transaction of its own; false when there is none.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/unavailable`` when PostgreSQL fails.
    public func revoke(id: String) async throws -> Bool {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                var removed = false
                let rows = try await connection.query(
                    "DELETE FROM \(unescaped: table) WHERE id = \(id) RETURNING id", logger: logger)
                for try await _ in rows.decode(String.self) { removed = true }
                return removed
            }
        } catch {
            throw EventStoreError(.unavailable, "Revoking a token failed: \(String(reflecting: error)).")
        }
    }
}
