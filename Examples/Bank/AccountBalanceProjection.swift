import Annals
import Synchronization

/// One row of the balance read model.
struct AccountBalance: Sendable, Equatable {
    var accountID: String
    var owner: String
    /// The balance, in cents.
    var balance: Int
    var isClosed: Bool
}

/// Keeps every account's balance from the events of category `account`.
///
/// The read model lives in memory, behind a `Mutex`. The runner delivers events at least once, so each
/// row remembers the last revision of its stream that it applied and skips anything at or below it.
final class AccountBalanceProjection: Projection {
    private struct Row: Sendable {
        var balance: AccountBalance
        /// The last revision of the account's stream applied to `balance`.
        var revision: StreamRevision
    }

    let name = "account-balances"
    let target = SubscriptionTarget.category(AccountDecider.streamCategory)

    private let rows = Mutex<[String: Row]>([:])

    /// The balance of one account, or `nil` when the projection has not seen it opened.
    func balance(of accountID: String) -> AccountBalance? {
        rows.withLock { $0[accountID]?.balance }
    }

    /// Every account, by id.
    var balances: [AccountBalance] {
        rows.withLock { rows in rows.values.map(\.balance) }.sorted { $0.accountID < $1.accountID }
    }

    func apply(_ event: RecordedEvent) async throws {
        guard let accountEvent = try AccountEvent.codec.decodeIfKnown(event) else { return }
        rows.withLock { rows in
            Self.apply(accountEvent, at: event.revision, to: &rows)
        }
    }

    func reset() async throws {
        rows.withLock { $0.removeAll() }
    }

    private static func apply(_ event: AccountEvent, at revision: StreamRevision, to rows: inout [String: Row]) {
        if case .opened(let opened) = event {
            // A stream's first event; a row that exists already has seen it.
            guard rows[opened.accountID] == nil else { return }
            let balance = AccountBalance(accountID: opened.accountID, owner: opened.owner, balance: 0, isClosed: false)
            rows[opened.accountID] = Row(balance: balance, revision: revision)
            return
        }
        guard var row = rows[event.accountID], revision > row.revision else { return }
        switch event {
        case .opened:
            break
        case .deposited(let deposited):
            row.balance.balance += deposited.amount
        case .withdrawn(let withdrawn):
            row.balance.balance -= withdrawn.amount
        case .closed:
            row.balance.isClosed = true
        case .debited(let debited):
            row.balance.balance -= debited.amount
        case .credited(let credited):
            row.balance.balance += credited.amount
        case .refunded(let refunded):
            row.balance.balance += refunded.amount
        }
        row.revision = revision
        rows[event.accountID] = row
    }
}

extension AccountEvent {
    /// The account the event belongs to.
    var accountID: String {
        switch self {
        case .opened(let opened): opened.accountID
        case .deposited(let deposited): deposited.accountID
        case .withdrawn(let withdrawn): withdrawn.accountID
        case .closed(let closed): closed.accountID
        case .debited(let debited): debited.accountID
        case .credited(let credited): credited.accountID
        case .refunded(let refunded): refunded.accountID
        }
    }
}
