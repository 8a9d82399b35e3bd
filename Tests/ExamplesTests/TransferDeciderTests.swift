import Foundation
import Testing

@testable import BankExample

/// Given past events, when a command, then new events or a rejection: every step of a transfer's record.
@Suite("The transfer decider")
struct TransferDeciderTests {
    let decider = TransferDecider()
    let requestedAt = Date(timeIntervalSince1970: 1_700_000_000)

    // MARK: Events to build histories from

    var requested: TransferEvent {
        .requested(
            TransferRequested(
                transferID: "t1",
                fromAccountID: "alice",
                toAccountID: "bob",
                amount: 3_000,
                requestedAt: requestedAt
            )
        )
    }

    let debited = TransferEvent.sourceDebited(TransferSourceDebited(transferID: "t1"))
    let completed = TransferEvent.completed(TransferCompleted(transferID: "t1"))
    let failed = TransferEvent.failed(TransferFailed(transferID: "t1", reason: "no money"))
    let compensated = TransferEvent.compensated(TransferCompensated(transferID: "t1", reason: "closed"))

    /// The command that asks for transfer t1.
    func request(from: String = "alice", to: String = "bob", amount: Int = 3_000) -> TransferCommand {
        .request(transferID: "t1", from: from, to: to, amount: amount, at: requestedAt)
    }

    /// When `command`, given `history`: the events the decider decides.
    func decide(_ command: TransferCommand, given history: [TransferEvent]) throws(TransferRejection)
        -> [TransferEvent]
    {
        try decider.decide(command, state: decider.fold(history))
    }

    // MARK: Requesting

    @Test("requesting a transfer records TransferRequested; requesting it again is refused: alreadyRequested")
    func requesting() throws {
        #expect(try decide(request(), given: []) == [requested])
        #expect(throws: TransferRejection.alreadyRequested) {
            try decide(request(), given: [requested])
        }
    }

    @Test("a transfer needs two different accounts: sameAccount")
    func sameAccount() {
        #expect(throws: TransferRejection.sameAccount) {
            try decide(request(from: "alice", to: "alice"), given: [])
        }
    }

    @Test("a transfer needs a positive amount: invalidAmount", arguments: [0, -1])
    func invalidAmount(amount: Int) {
        #expect(throws: TransferRejection.invalidAmount(amount)) {
            try decide(request(amount: amount), given: [])
        }
    }

    @Test(
        "every step needs a requested transfer: transferNotFound",
        arguments: [
            TransferCommand.recordDebit, .complete, .fail(reason: "no money"), .compensate(reason: "closed"),
        ]
    )
    func needsATransfer(command: TransferCommand) {
        #expect(throws: TransferRejection.transferNotFound) {
            try decide(command, given: [])
        }
    }

    // MARK: The happy path

    @Test("requested, then debited, then completed; repeating a step decides no events")
    func happyPath() throws {
        #expect(try decide(.recordDebit, given: [requested]) == [debited])
        #expect(try decide(.recordDebit, given: [requested, debited]).isEmpty)
        #expect(try decide(.complete, given: [requested, debited]) == [completed])
        #expect(try decide(.complete, given: [requested, debited, completed]).isEmpty)
        #expect(try decide(.recordDebit, given: [requested, debited, completed]).isEmpty)
        let state = decider.fold([requested, debited, completed])
        #expect(state.status == .completed)
        #expect(state.failureReason == nil)
    }

    @Test("a transfer completes only after its source was debited: sourceNotDebited")
    func completingEarly() {
        #expect(throws: TransferRejection.sourceNotDebited) {
            try decide(.complete, given: [requested])
        }
    }

    // MARK: Failure and compensation

    @Test("a refused debit fails the transfer, with the reason; failing again decides no events")
    func failing() throws {
        #expect(try decide(.fail(reason: "no money"), given: [requested]) == [failed])
        #expect(try decide(.fail(reason: "no money"), given: [requested, failed]).isEmpty)
        let state = decider.fold([requested, failed])
        #expect(state.status == .failed)
        #expect(state.failureReason == "no money")
    }

    @Test("a debited transfer cannot simply fail: sourceAlreadyDebited")
    func failingAfterDebit() {
        #expect(throws: TransferRejection.sourceAlreadyDebited) {
            try decide(.fail(reason: "no money"), given: [requested, debited])
        }
    }

    @Test("a refused credit compensates a debited transfer; compensating again decides no events")
    func compensating() throws {
        #expect(try decide(.compensate(reason: "closed"), given: [requested, debited]) == [compensated])
        #expect(try decide(.compensate(reason: "closed"), given: [requested, debited, compensated]).isEmpty)
        #expect(try decide(.recordDebit, given: [requested, debited, compensated]).isEmpty)
        let state = decider.fold([requested, debited, compensated])
        #expect(state.status == .compensated)
        #expect(state.failureReason == "closed")
    }

    @Test("a finished transfer refuses the other endings")
    func finished() {
        #expect(throws: TransferRejection.sourceNotDebited) {
            try decide(.compensate(reason: "closed"), given: [requested])
        }
        #expect(throws: TransferRejection.alreadyCompleted) {
            try decide(.compensate(reason: "closed"), given: [requested, debited, completed])
        }
        #expect(throws: TransferRejection.alreadyCompensated) {
            try decide(.complete, given: [requested, debited, compensated])
        }
        #expect(throws: TransferRejection.alreadyFailed) {
            try decide(.recordDebit, given: [requested, failed])
        }
    }
}
