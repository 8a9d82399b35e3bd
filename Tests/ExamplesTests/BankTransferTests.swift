import Annals
import Foundation
import Testing

@testable import BankExample

/// Transfers end to end on an in-memory store: the process manager, the deciders and the projection.
@Suite("Bank transfers")
struct BankTransferTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    /// A bank on a fresh store: Alice has 100.00, Bob 20.00, and Carol's account is closed.
    func openBank() async throws -> Bank {
        let store = try InMemoryEventStore()
        let bank = Bank(store: store)
        try await bank.accounts.handle(.open(accountID: "alice", owner: "Alice"), on: .account("alice"))
        try await bank.accounts.handle(.open(accountID: "bob", owner: "Bob"), on: .account("bob"))
        try await bank.accounts.handle(.open(accountID: "carol", owner: "Carol"), on: .account("carol"))
        try await bank.accounts.handle(.deposit(amount: 10_000), on: .account("alice"))
        try await bank.accounts.handle(.deposit(amount: 2_000), on: .account("bob"))
        try await bank.accounts.handle(.close, on: .account("carol"))
        return bank
    }

    /// The balances of Alice, Bob and Carol, as their events tell them.
    func balances(_ bank: Bank) async throws -> [Int] {
        var balances: [Int] = []
        for accountID in ["alice", "bob", "carol"] {
            balances.append(try await bank.account(accountID).balance)
        }
        return balances
    }

    /// The types of the events in a stream.
    func eventTypes(in stream: StreamName, of bank: Bank) async throws -> [String] {
        try await bank.store.read(stream).map(\.type)
    }

    @Test("a transfer between two open accounts completes and moves the money", .timeLimit(.minutes(1)))
    func completes() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t1", from: "alice", to: "bob", amount: 3_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())

        #expect(try await balances(bank) == [7_000, 5_000, 0])
        let transfer = try await bank.transfer("t1")
        #expect(transfer.status == .completed)
        #expect(transfer.failureReason == nil)
        #expect(
            try await eventTypes(in: .transfer("t1"), of: bank) == [
                "TransferRequested", "TransferSourceDebited", "TransferCompleted",
            ]
        )
    }

    @Test("a transfer to a closed account is compensated: the source gets its money back", .timeLimit(.minutes(1)))
    func compensates() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t2", from: "alice", to: "carol", amount: 1_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())

        #expect(try await balances(bank) == [10_000, 2_000, 0])
        let transfer = try await bank.transfer("t2")
        #expect(transfer.status == .compensated)
        #expect(transfer.failureReason == "carol: \(AccountRejection.accountClosed)")
        #expect(
            try await eventTypes(in: .transfer("t2"), of: bank) == [
                "TransferRequested", "TransferSourceDebited", "TransferCompensated",
            ]
        )
        let alice = try await bank.account("alice")
        #expect(alice.debitedTransfers == ["t2": 1_000])
        #expect(alice.refundedTransfers == ["t2"])
        #expect(try await eventTypes(in: .account("carol"), of: bank) == ["AccountOpened", "AccountClosed"])
    }

    @Test("a transfer the source cannot pay fails, and no money moves", .timeLimit(.minutes(1)))
    func fails() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t3", from: "bob", to: "alice", amount: 50_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())

        #expect(try await balances(bank) == [10_000, 2_000, 0])
        let transfer = try await bank.transfer("t3")
        #expect(transfer.status == .failed)
        let refusal = AccountRejection.insufficientFunds(balance: 2_000, requested: 50_000)
        #expect(transfer.failureReason == "bob: \(refusal)")
        #expect(try await eventTypes(in: .transfer("t3"), of: bank) == ["TransferRequested", "TransferFailed"])
    }

    @Test("every event of a transfer carries the request's correlation id and its cause", .timeLimit(.minutes(1)))
    func correlates() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t1", from: "alice", to: "bob", amount: 3_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())

        let correlationID = Bank.correlationID(ofTransfer: "t1")
        let story = try await bank.store.readAll().filter {
            EventMetadata(decoding: $0.metadata).correlationID == correlationID
        }
        #expect(
            story.map(\.type) == [
                "TransferRequested", "AccountDebited", "TransferSourceDebited", "AccountCredited", "TransferCompleted",
            ]
        )
        let request = try #require(story.first)
        let debit = try #require(story.first(where: { $0.type == "AccountDebited" }))
        let credit = try #require(story.first(where: { $0.type == "AccountCredited" }))
        #expect(EventMetadata(decoding: debit.metadata).causationID == request.id.uuidString)
        #expect(EventMetadata(decoding: credit.metadata).causationID == debit.id.uuidString)
    }

    @Test("running the process manager again over the same events changes nothing", .timeLimit(.minutes(1)))
    func reprocessingChangesNothing() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t1", from: "alice", to: "bob", amount: 3_000, at: now)
        try await bank.requestTransfer("t2", from: "alice", to: "carol", amount: 1_000, at: now)
        try await bank.requestTransfer("t3", from: "bob", to: "alice", amount: 50_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())
        let head = try await bank.store.headPosition()
        let balancesBefore = try await balances(bank)
        #expect(balancesBefore == [7_000, 5_000, 0])

        // A fresh checkpoint store: the process manager sees every event again, as after a lost checkpoint.
        let passes = try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())
        #expect(passes == 2)
        #expect(try await bank.store.headPosition() == head)
        #expect(try await balances(bank) == balancesBefore)
        #expect(try await bank.transfer("t1").status == .completed)
        #expect(try await bank.transfer("t2").status == .compensated)
        #expect(try await bank.transfer("t3").status == .failed)
    }

    @Test("reacting to the same debit again credits nobody twice", .timeLimit(.minutes(1)))
    func reactingTwice() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t1", from: "alice", to: "bob", amount: 3_000, at: now)
        try await bank.requestTransfer("t2", from: "alice", to: "carol", amount: 1_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())
        let head = try await bank.store.headPosition()

        let debits = try await bank.store.readAll(filter: .eventTypes([AccountDebited.typeName]))
        #expect(debits.count == 2)
        for debit in debits {
            try await bank.transferProcess.react(to: debit)
            try await bank.transferProcess.react(to: debit)
        }
        #expect(try await bank.store.headPosition() == head)
        #expect(try await balances(bank) == [7_000, 5_000, 0])
    }

    @Test("a repeated debit with the same transfer id is recorded once", .timeLimit(.minutes(1)))
    func repeatedDebit() async throws {
        let bank = try await openBank()
        let debit = AccountCommand.debit(transferID: "t9", amount: 2_500, toAccountID: "bob")
        let first = try await bank.accounts.handle(debit, on: .account("alice"))
        let second = try await bank.accounts.handle(debit, on: .account("alice"))
        #expect(first.events.count == 1)
        #expect(second.events.isEmpty)
        #expect(second.append == nil)
        #expect(try await bank.account("alice").balance == 7_500)
    }

    @Test("an overdraft through the command handler is refused and records nothing", .timeLimit(.minutes(1)))
    func overdraft() async throws {
        let bank = try await openBank()
        let head = try await bank.store.headPosition()
        await #expect(throws: AccountRejection.insufficientFunds(balance: 2_000, requested: 2_001)) {
            try await bank.accounts.handle(.withdraw(amount: 2_001), on: .account("bob"))
        }
        #expect(try await bank.store.headPosition() == head)
    }

    @Test("the balance projection agrees with the accounts, and a rebuild gives the same", .timeLimit(.minutes(1)))
    func projectsBalances() async throws {
        let bank = try await openBank()
        try await bank.requestTransfer("t1", from: "alice", to: "bob", amount: 3_000, at: now)
        try await bank.requestTransfer("t2", from: "alice", to: "carol", amount: 1_000, at: now)
        try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())

        let projection = AccountBalanceProjection()
        let runner = ProjectionRunner(projection: projection, store: bank.store, checkpoints: InMemoryCheckpointStore())
        try await runner.catchUp()
        let expected = [
            AccountBalance(accountID: "alice", owner: "Alice", balance: 7_000, isClosed: false),
            AccountBalance(accountID: "bob", owner: "Bob", balance: 5_000, isClosed: false),
            AccountBalance(accountID: "carol", owner: "Carol", balance: 0, isClosed: true),
        ]
        #expect(projection.balances == expected)

        try await runner.rebuild()
        #expect(projection.balances.isEmpty)
        try await runner.catchUp()
        #expect(projection.balances == expected)

        // At-least-once delivery: an account event applied twice counts once.
        for event in try await bank.store.readCategory(AccountDecider.streamCategory) {
            try await projection.apply(event)
        }
        #expect(projection.balances == expected)
    }
}
