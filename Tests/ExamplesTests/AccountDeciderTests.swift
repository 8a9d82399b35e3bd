import Foundation
import Testing

@testable import BankExample

/// Given past events, when a command, then new events or a rejection: every rule of an account.
@Suite("The account decider")
struct AccountDeciderTests {
    let decider = AccountDecider()

    // MARK: Events to build histories from

    let opened = AccountEvent.opened(AccountOpened(accountID: "alice", owner: "Alice"))
    let closed = AccountEvent.closed(AccountClosed(accountID: "alice"))

    func deposited(_ amount: Int) -> AccountEvent {
        .deposited(MoneyDeposited(accountID: "alice", amount: amount))
    }

    func withdrawn(_ amount: Int) -> AccountEvent {
        .withdrawn(MoneyWithdrawn(accountID: "alice", amount: amount))
    }

    func debited(_ amount: Int, for transferID: String = "t1") -> AccountEvent {
        .debited(AccountDebited(accountID: "alice", transferID: transferID, amount: amount, toAccountID: "bob"))
    }

    func credited(_ amount: Int, for transferID: String = "t1") -> AccountEvent {
        .credited(AccountCredited(accountID: "alice", transferID: transferID, amount: amount, fromAccountID: "bob"))
    }

    func refunded(_ amount: Int, for transferID: String = "t1") -> AccountEvent {
        .refunded(AccountRefunded(accountID: "alice", transferID: transferID, amount: amount))
    }

    /// When `command`, given `history`: the events the decider decides.
    func decide(_ command: AccountCommand, given history: [AccountEvent]) throws(AccountRejection) -> [AccountEvent] {
        try decider.decide(command, state: decider.fold(history))
    }

    // MARK: Opening and closing

    @Test("opening an account records AccountOpened; opening it again is refused: alreadyOpened")
    func opening() throws {
        #expect(try decide(.open(accountID: "alice", owner: "Alice"), given: []) == [opened])
        #expect(throws: AccountRejection.alreadyOpened) {
            try decide(.open(accountID: "alice", owner: "Alice"), given: [opened])
        }
    }

    @Test(
        "every command but open needs an opened account: accountNotFound",
        arguments: [
            AccountCommand.deposit(amount: 100),
            .withdraw(amount: 100),
            .close,
            .debit(transferID: "t1", amount: 100, toAccountID: "bob"),
            .credit(transferID: "t1", amount: 100, fromAccountID: "bob"),
            .refund(transferID: "t1"),
        ]
    )
    func needsAnAccount(command: AccountCommand) {
        #expect(throws: AccountRejection.accountNotFound) {
            try decide(command, given: [])
        }
    }

    @Test("closing an empty account records AccountClosed; closing it again changes nothing")
    func closing() throws {
        #expect(try decide(.close, given: [opened]) == [closed])
        #expect(try decide(.close, given: [opened, deposited(500), withdrawn(500)]) == [closed])
        #expect(try decide(.close, given: [opened, closed]).isEmpty)
    }

    @Test("closing an account with money in it is refused: balanceNotZero")
    func closingWithMoney() {
        #expect(throws: AccountRejection.balanceNotZero(500)) {
            try decide(.close, given: [opened, deposited(500)])
        }
    }

    // MARK: Deposits and withdrawals

    @Test("a deposit records MoneyDeposited and raises the balance")
    func depositing() throws {
        let events = try decide(.deposit(amount: 10_000), given: [opened])
        #expect(events == [deposited(10_000)])
        #expect(decider.fold([opened] + events).balance == 10_000)
    }

    @Test("a closed account refuses deposits: accountClosed")
    func depositingIntoAClosedAccount() {
        #expect(throws: AccountRejection.accountClosed) {
            try decide(.deposit(amount: 100), given: [opened, closed])
        }
    }

    @Test("amounts must be positive: invalidAmount", arguments: [0, -100])
    func invalidAmounts(amount: Int) {
        #expect(throws: AccountRejection.invalidAmount(amount)) {
            try decide(.deposit(amount: amount), given: [opened])
        }
        #expect(throws: AccountRejection.invalidAmount(amount)) {
            try decide(.withdraw(amount: amount), given: [opened, deposited(500)])
        }
    }

    @Test("a withdrawal up to the balance records MoneyWithdrawn")
    func withdrawing() throws {
        #expect(try decide(.withdraw(amount: 5_000), given: [opened, deposited(5_000)]) == [withdrawn(5_000)])
    }

    @Test("an overdraft is refused: insufficientFunds, with the balance and the amount asked for")
    func overdraft() {
        #expect(throws: AccountRejection.insufficientFunds(balance: 5_000, requested: 5_001)) {
            try decide(.withdraw(amount: 5_001), given: [opened, deposited(5_000)])
        }
        #expect(throws: AccountRejection.insufficientFunds(balance: 5_000, requested: 5_001)) {
            try decide(.debit(transferID: "t1", amount: 5_001, toAccountID: "bob"), given: [opened, deposited(5_000)])
        }
    }

    // MARK: Transfer steps

    @Test("a debit for a transfer records AccountDebited and remembers the transfer")
    func debiting() throws {
        let history = [opened, deposited(10_000)]
        let events = try decide(.debit(transferID: "t1", amount: 3_000, toAccountID: "bob"), given: history)
        #expect(events == [debited(3_000)])
        let state = decider.fold(history + events)
        #expect(state.balance == 7_000)
        #expect(state.debitedTransfers == ["t1": 3_000])
    }

    @Test("a repeated debit with the same transfer id decides no events, whatever the balance now")
    func repeatedDebit() throws {
        let debit = AccountCommand.debit(transferID: "t1", amount: 3_000, toAccountID: "bob")
        #expect(try decide(debit, given: [opened, deposited(10_000), debited(3_000)]).isEmpty)
        // Even when the money is gone or the account closed since: the debit happened once, and that is all.
        #expect(try decide(debit, given: [opened, deposited(3_000), debited(3_000), closed]).isEmpty)
        // Another transfer is another debit.
        let other = AccountCommand.debit(transferID: "t2", amount: 3_000, toAccountID: "bob")
        #expect(try decide(other, given: [opened, deposited(10_000), debited(3_000)]) == [debited(3_000, for: "t2")])
    }

    @Test("a credit records AccountCredited; a repeated one decides no events")
    func crediting() throws {
        let credit = AccountCommand.credit(transferID: "t1", amount: 3_000, fromAccountID: "bob")
        #expect(try decide(credit, given: [opened]) == [credited(3_000)])
        #expect(try decide(credit, given: [opened, credited(3_000)]).isEmpty)
    }

    @Test("a closed account refuses credits: accountClosed")
    func creditingAClosedAccount() {
        #expect(throws: AccountRejection.accountClosed) {
            try decide(.credit(transferID: "t1", amount: 3_000, fromAccountID: "bob"), given: [opened, closed])
        }
    }

    @Test("a refund gives back what the transfer debited, once")
    func refunding() throws {
        let history = [opened, deposited(10_000), debited(3_000)]
        let events = try decide(.refund(transferID: "t1"), given: history)
        #expect(events == [refunded(3_000)])
        #expect(decider.fold(history + events).balance == 10_000)
        #expect(try decide(.refund(transferID: "t1"), given: history + events).isEmpty)
    }

    @Test("a refund for a transfer that never debited the account is refused: transferNotDebited")
    func refundingWithoutDebit() {
        #expect(throws: AccountRejection.transferNotDebited(transferID: "t9")) {
            try decide(.refund(transferID: "t9"), given: [opened, deposited(10_000), debited(3_000)])
        }
    }

    @Test("folding the events gives the balance and the transfers seen")
    func folding() {
        let state = decider.fold([
            opened, deposited(10_000), withdrawn(1_000), debited(3_000), refunded(3_000),
            credited(500, for: "t2"),
        ])
        #expect(state.status == .open)
        #expect(state.owner == "Alice")
        #expect(state.balance == 9_500)
        #expect(state.debitedTransfers == ["t1": 3_000])
        #expect(state.refundedTransfers == ["t1"])
        #expect(state.creditedTransfers == ["t2"])
    }
}
