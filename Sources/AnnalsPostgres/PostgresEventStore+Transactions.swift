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
            let pending = PendingAppend(events: events, stream: stream, expected: expected)
            let result = try await appendInTransaction(pending, on: connection).get()
            return result
        } catch {
            throw Self.storeError(error, "Appending in the caller's transaction failed")
        }
    }
}
