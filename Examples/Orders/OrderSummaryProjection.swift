import Annals
import Synchronization

/// One row of the order summary read model: where an order stands and what it is worth.
struct OrderSummary: Sendable, Equatable {
    var orderID: String
    var customer: String
    var currency: String
    var status: OrderStatus
    /// How many units the order holds.
    var itemCount: Int
    /// What the order costs, in cents.
    var total: Int
}

/// Keeps a summary of every order (status, item count, total) from the events of category `order`.
///
/// The read model lives in memory, behind a `Mutex`. The runner delivers events at least once, so
/// each row remembers the last revision of its stream that it applied and skips anything at or below
/// it: applying an event twice changes nothing.
final class OrderSummaryProjection: Projection {
    private struct Row: Sendable {
        var summary: OrderSummary
        /// The last revision of the order's stream applied to `summary`.
        var revision: StreamRevision
    }

    let name = "order-summaries"
    let target = SubscriptionTarget.category(OrderDecider.streamCategory)

    private let rows = Mutex<[String: Row]>([:])

    /// The summary of one order, or `nil` when the projection has not seen it placed.
    func summary(of orderID: String) -> OrderSummary? {
        rows.withLock { $0[orderID]?.summary }
    }

    /// Every summary, by order id.
    var summaries: [OrderSummary] {
        rows.withLock { rows in rows.values.map(\.summary) }.sorted { $0.orderID < $1.orderID }
    }

    func apply(_ event: RecordedEvent) async throws {
        guard let orderEvent = try OrderEvent.codec.decodeIfKnown(event) else { return }
        rows.withLock { rows in
            Self.apply(orderEvent, at: event.revision, to: &rows)
        }
    }

    func reset() async throws {
        rows.withLock { $0.removeAll() }
    }

    private static func apply(_ event: OrderEvent, at revision: StreamRevision, to rows: inout [String: Row]) {
        if case .placed(let placed) = event {
            // A stream's first event; a row that exists already has seen it.
            guard rows[placed.orderID] == nil else { return }
            let summary = OrderSummary(
                orderID: placed.orderID,
                customer: placed.customer,
                currency: placed.currency,
                status: .placed,
                itemCount: 0,
                total: 0
            )
            rows[placed.orderID] = Row(summary: summary, revision: revision)
            return
        }
        guard var row = rows[event.orderID], revision > row.revision else { return }
        switch event {
        case .placed:
            break
        case .itemAdded(let added):
            row.summary.itemCount += added.quantity
            row.summary.total += added.quantity * added.unitPrice
        case .itemRemoved(let removed):
            row.summary.itemCount -= removed.quantity
            row.summary.total -= removed.quantity * removed.unitPrice
        case .confirmed:
            row.summary.status = .confirmed
        case .shipped:
            row.summary.status = .shipped
        case .cancelled:
            row.summary.status = .cancelled
        }
        row.revision = revision
        rows[event.orderID] = row
    }
}

extension OrderEvent {
    /// The order the event belongs to.
    var orderID: String {
        switch self {
        case .placed(let placed): placed.orderID
        case .itemAdded(let added): added.orderID
        case .itemRemoved(let removed): removed.orderID
        case .confirmed(let confirmed): confirmed.orderID
        case .shipped(let shipped): shipped.orderID
        case .cancelled(let cancelled): cancelled.orderID
        }
    }
}
