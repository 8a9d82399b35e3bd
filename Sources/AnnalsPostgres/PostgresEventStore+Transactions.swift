import Annals
import Foundation
import PostgresNIO

extension PostgresEventStore {
    /// Appends inside a transaction the caller holds on `connection`, so the events commit (or roll
    /// back) together with the caller's own writes — an outbox, a read model, a process manager's state.
    ///
    /// The append takes the store's counter row lock until the caller's transaction ends: keep such
    /// transactions short, as every other append waits for them. The connection must be inside a
    /// transaction (`withTransaction`) at `READ COMMITTED`, PostgreSQL's default. The events become visible, and
    /// subscribers are notified, when the transaction commits; a rollback gives the positions back.
    ///
    /// - Throws: the same errors as ``append(_:to:expecting:)``.
    public func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        in connection: PostgresConnection
    ) async throws -> AppendResult {
        try configuration.limits.check(events, stream: stream)
        do {
            var head: Int64 = 0
            for try await value in try await connection.query(
                "SELECT next_position FROM \(unescaped: schema).counter WHERE id = 1 FOR UPDATE",
                logger: logger
            ).decode(Int64.self) {
                head = value
            }
            let pending = PendingAppend(events: events, stream: stream, expected: expected)
            let outcome = try await appendOne(pending, at: head, recordedAt: Date(), on: connection)
            let result = try outcome.get()
            if result.firstPosition.value == UInt64(head) {
                let next = head + Int64(events.count)
                try await connection.query(
                    "UPDATE \(unescaped: schema).counter SET next_position = \(next) WHERE id = 1",
                    logger: logger
                )
                try await connection.query("SELECT pg_notify(\(channel), \(String(next)))", logger: logger)
            }
            return result
        } catch {
            throw Self.storeError(error, "Appending in the caller's transaction failed")
        }
    }
}
