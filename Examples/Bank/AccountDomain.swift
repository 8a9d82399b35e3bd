import Annals
import Foundation

// A bank account: opened for an owner, money in and out, closed for good. Transfers move money between
// accounts in three steps (debit, credit, refund), each tagged with the transfer's id so that a step
// repeated by the transfer process changes nothing the second time.

// MARK: - Commands

/// What someone (or the transfer process) asks of an account. Amounts are in cents.
enum AccountCommand: Sendable, Equatable, CustomStringConvertible {
    /// Opens the account for its owner.
    case open(accountID: String, owner: String)
    /// Puts money in.
    case deposit(amount: Int)
    /// Takes money out; never more than the balance.
    case withdraw(amount: Int)
    /// Closes the account; it must be empty. A closed account takes no more money.
    case close
    /// Takes money out for a transfer to `toAccountID` (the transfer's first step).
    case debit(transferID: String, amount: Int, toAccountID: String)
    /// Puts money in for a transfer from `fromAccountID` (the transfer's second step).
    case credit(transferID: String, amount: Int, fromAccountID: String)
    /// Gives back what a transfer debited, when its credit was refused (the compensation).
    case refund(transferID: String)

    var description: String {
        switch self {
        case .open(let accountID, let owner): "open account \(accountID) for \(owner)"
        case .deposit(let amount): "deposit \(AccountMoney.format(amount))"
        case .withdraw(let amount): "withdraw \(AccountMoney.format(amount))"
        case .close: "close"
        case .debit(let transferID, let amount, let toAccountID):
            "debit \(AccountMoney.format(amount)) for transfer \(transferID) to \(toAccountID)"
        case .credit(let transferID, let amount, let fromAccountID):
            "credit \(AccountMoney.format(amount)) for transfer \(transferID) from \(fromAccountID)"
        case .refund(let transferID): "refund transfer \(transferID)"
        }
    }
}

// MARK: - Events

/// An account was opened.
struct AccountOpened: Codable, Sendable, Equatable {
    static let typeName = "AccountOpened"

    var accountID: String
    var owner: String
}

/// Money was put into an account.
struct MoneyDeposited: Codable, Sendable, Equatable {
    static let typeName = "MoneyDeposited"

    var accountID: String
    var amount: Int
}

/// Money was taken out of an account.
struct MoneyWithdrawn: Codable, Sendable, Equatable {
    static let typeName = "MoneyWithdrawn"

    var accountID: String
    var amount: Int
}

/// An account was closed.
struct AccountClosed: Codable, Sendable, Equatable {
    static let typeName = "AccountClosed"

    var accountID: String
}

/// Money left an account for a transfer.
struct AccountDebited: Codable, Sendable, Equatable {
    static let typeName = "AccountDebited"

    var accountID: String
    var transferID: String
    var amount: Int
    /// Where the money is going.
    var toAccountID: String
}

/// Money arrived in an account from a transfer.
struct AccountCredited: Codable, Sendable, Equatable {
    static let typeName = "AccountCredited"

    var accountID: String
    var transferID: String
    var amount: Int
    /// Where the money came from.
    var fromAccountID: String
}

/// A transfer's debit was given back, because its credit was refused.
struct AccountRefunded: Codable, Sendable, Equatable {
    static let typeName = "AccountRefunded"

    var accountID: String
    var transferID: String
    var amount: Int
}

/// Everything that can happen to an account: one case per event, one `Codable` payload per case.
enum AccountEvent: Sendable, Equatable, CustomStringConvertible {
    case opened(AccountOpened)
    case deposited(MoneyDeposited)
    case withdrawn(MoneyWithdrawn)
    case closed(AccountClosed)
    case debited(AccountDebited)
    case credited(AccountCredited)
    case refunded(AccountRefunded)

    /// Maps account events to stored events and back.
    static let codec = EventCodec<AccountEvent>()
        .registering(AccountOpened.self, as: AccountOpened.typeName, AccountEvent.opened)
        .registering(MoneyDeposited.self, as: MoneyDeposited.typeName, AccountEvent.deposited)
        .registering(MoneyWithdrawn.self, as: MoneyWithdrawn.typeName, AccountEvent.withdrawn)
        .registering(AccountClosed.self, as: AccountClosed.typeName, AccountEvent.closed)
        .registering(AccountDebited.self, as: AccountDebited.typeName, AccountEvent.debited)
        .registering(AccountCredited.self, as: AccountCredited.typeName, AccountEvent.credited)
        .registering(AccountRefunded.self, as: AccountRefunded.typeName, AccountEvent.refunded)

    var description: String {
        switch self {
        case .opened(let opened): "AccountOpened(\(opened.accountID) for \(opened.owner))"
        case .deposited(let deposited): "MoneyDeposited(\(AccountMoney.format(deposited.amount)))"
        case .withdrawn(let withdrawn): "MoneyWithdrawn(\(AccountMoney.format(withdrawn.amount)))"
        case .closed: "AccountClosed"
        case .debited(let debited):
            "AccountDebited(\(AccountMoney.format(debited.amount)), transfer \(debited.transferID))"
        case .credited(let credited):
            "AccountCredited(\(AccountMoney.format(credited.amount)), transfer \(credited.transferID))"
        case .refunded(let refunded):
            "AccountRefunded(\(AccountMoney.format(refunded.amount)), transfer \(refunded.transferID))"
        }
    }
}

// MARK: - State

/// Whether an account takes money.
enum AccountStatus: String, Sendable, Equatable {
    case open
    case closed
}

/// What the decider knows of an account, folded from its events.
struct AccountState: Sendable, Equatable {
    /// `nil` until the account is opened.
    var status: AccountStatus?
    var accountID = ""
    var owner = ""
    /// The balance, in cents; never negative.
    var balance = 0
    /// The transfers this account was debited for, with the amounts.
    var debitedTransfers: [String: Int] = [:]
    /// The transfers this account was credited for.
    var creditedTransfers: Set<String> = []
    /// The transfers whose debit was given back.
    var refundedTransfers: Set<String> = []
}

// MARK: - Rejections

/// Why an account refused a command.
enum AccountRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The account was never opened.
    case accountNotFound
    /// `open` on an account that exists already.
    case alreadyOpened
    /// Money in or out of a closed account.
    case accountClosed
    /// A withdrawal or debit above the balance.
    case insufficientFunds(balance: Int, requested: Int)
    /// An amount of zero, a negative one, or one above ``AccountDecider/maximumAmount``.
    case invalidAmount(Int)
    /// `close` while money is left in the account.
    case balanceNotZero(Int)
    /// `refund` for a transfer that never debited this account.
    case transferNotDebited(transferID: String)

    var description: String {
        switch self {
        case .accountNotFound: "there is no such account"
        case .alreadyOpened: "the account is open already"
        case .accountClosed: "the account is closed"
        case .insufficientFunds(let balance, let requested):
            "insufficient funds: the balance is \(AccountMoney.format(balance)), "
                + "\(AccountMoney.format(requested)) was asked for"
        case .invalidAmount(let amount): "\(amount) cents is not a valid amount"
        case .balanceNotZero(let balance): "\(AccountMoney.format(balance)) is still in the account"
        case .transferNotDebited(let transferID): "transfer \(transferID) never debited this account"
        }
    }
}

// MARK: - Decider

/// The rules of an account.
///
/// - `open` once; every other command needs an open account (a refund also works on a closed one: it
///   only gives back what a transfer took).
/// - Amounts are positive cents, at most ``maximumAmount``. Withdrawals and debits never exceed the
///   balance: an overdraft is refused with ``AccountRejection/insufficientFunds(balance:requested:)``.
/// - `close` needs an empty account; a closed account refuses deposits, withdrawals, debits and credits.
/// - Transfer steps are idempotent: a debit, credit or refund for a transfer id the account has seen
///   decides no events, whatever the account's state now.
struct AccountDecider: Decider {
    typealias State = AccountState
    typealias Command = AccountCommand
    typealias Event = AccountEvent
    typealias Rejection = AccountRejection

    /// The category of account streams: `account-<id>`.
    static let streamCategory = "account"
    /// The largest amount one command may move, in cents (one billion).
    static let maximumAmount = 100_000_000_000

    var initialState: AccountState { AccountState() }

    func decide(_ command: AccountCommand, state: AccountState) throws(AccountRejection) -> [AccountEvent] {
        switch command {
        case .open(let accountID, let owner):
            guard state.status == nil else { throw .alreadyOpened }
            return [.opened(AccountOpened(accountID: accountID, owner: owner))]

        case .deposit(let amount):
            try requireOpen(state)
            try validate(amount)
            return [.deposited(MoneyDeposited(accountID: state.accountID, amount: amount))]

        case .withdraw(let amount):
            try requireOpen(state)
            try validate(amount)
            try requireFunds(amount, in: state)
            return [.withdrawn(MoneyWithdrawn(accountID: state.accountID, amount: amount))]

        case .close:
            switch state.status {
            case nil: throw .accountNotFound
            case .closed: return []
            case .open:
                guard state.balance == 0 else { throw .balanceNotZero(state.balance) }
                return [.closed(AccountClosed(accountID: state.accountID))]
            }

        case .debit(let transferID, let amount, let toAccountID):
            if state.debitedTransfers[transferID] != nil { return [] }
            try requireOpen(state)
            try validate(amount)
            try requireFunds(amount, in: state)
            let debited = AccountDebited(
                accountID: state.accountID,
                transferID: transferID,
                amount: amount,
                toAccountID: toAccountID
            )
            return [.debited(debited)]

        case .credit(let transferID, let amount, let fromAccountID):
            if state.creditedTransfers.contains(transferID) { return [] }
            try requireOpen(state)
            try validate(amount)
            let credited = AccountCredited(
                accountID: state.accountID,
                transferID: transferID,
                amount: amount,
                fromAccountID: fromAccountID
            )
            return [.credited(credited)]

        case .refund(let transferID):
            if state.refundedTransfers.contains(transferID) { return [] }
            guard state.status != nil else { throw .accountNotFound }
            guard let amount = state.debitedTransfers[transferID] else {
                throw .transferNotDebited(transferID: transferID)
            }
            return [.refunded(AccountRefunded(accountID: state.accountID, transferID: transferID, amount: amount))]
        }
    }

    func evolve(_ state: AccountState, _ event: AccountEvent) -> AccountState {
        var state = state
        switch event {
        case .opened(let opened):
            state.status = .open
            state.accountID = opened.accountID
            state.owner = opened.owner
        case .deposited(let deposited):
            state.balance += deposited.amount
        case .withdrawn(let withdrawn):
            state.balance -= withdrawn.amount
        case .closed:
            state.status = .closed
        case .debited(let debited):
            state.balance -= debited.amount
            state.debitedTransfers[debited.transferID] = debited.amount
        case .credited(let credited):
            state.balance += credited.amount
            state.creditedTransfers.insert(credited.transferID)
        case .refunded(let refunded):
            state.balance += refunded.amount
            state.refundedTransfers.insert(refunded.transferID)
        }
        return state
    }

    /// Whether `amount` is a positive number of cents no larger than ``maximumAmount``.
    static func isValid(amount: Int) -> Bool {
        amount > 0 && amount <= maximumAmount
    }

    private func requireOpen(_ state: AccountState) throws(AccountRejection) {
        switch state.status {
        case nil: throw .accountNotFound
        case .closed: throw .accountClosed
        case .open: return
        }
    }

    private func validate(_ amount: Int) throws(AccountRejection) {
        guard Self.isValid(amount: amount) else { throw .invalidAmount(amount) }
    }

    private func requireFunds(_ amount: Int, in state: AccountState) throws(AccountRejection) {
        guard amount <= state.balance else { throw .insufficientFunds(balance: state.balance, requested: amount) }
    }
}

// MARK: - Streams and money

extension StreamName {
    /// The stream of one account: `account-<id>`.
    static func account(_ accountID: String) throws(EventStoreError) -> StreamName {
        try StreamName("\(AccountDecider.streamCategory)-\(accountID)")
    }
}

/// Formats amounts in cents for people.
enum AccountMoney {
    /// `1250` as `"12.50 EUR"`.
    static func format(_ cents: Int) -> String {
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction) EUR"
    }
}
