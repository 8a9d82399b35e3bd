import Annals

/// Carries out transfers: reacts to transfer and account events with commands on accounts and transfers.
///
/// | When it sees                  | it does                                                            |
/// |-------------------------------|--------------------------------------------------------------------|
/// | `TransferRequested`           | debits the source; if the source refuses, marks the transfer failed |
/// | `AccountDebited` (a transfer) | marks the transfer debited, credits the destination; if the        |
/// |                               | destination refuses, refunds the source and marks it compensated   |
/// | `AccountCredited`             | marks the transfer completed                                       |
///
/// Every command carries `CommandMetadata(causedBy: event, index: n)`: the correlation id flows from the
/// request to every event of the transfer, and reacting to the same event again issues the very same
/// commands. The deciders recognise a transfer id they have seen and decide nothing, so a process
/// manager that sees events again (after a crash, or from a checkpoint that was lost) moves no money
/// twice.
struct TransferProcessManager: ProcessManager {
    let accounts: CommandHandler<AccountDecider>
    let transfers: CommandHandler<TransferDecider>

    var name: String { "transfer-process" }

    var target: SubscriptionTarget {
        .allMatching(.eventTypes([TransferRequested.typeName, AccountDebited.typeName, AccountCredited.typeName]))
    }

    func react(to event: RecordedEvent) async throws {
        switch event.stream.category {
        case TransferDecider.streamCategory:
            if case .requested(let requested)? = try TransferEvent.codec.decodeIfKnown(event) {
                try await debitSource(for: requested, causedBy: event)
            }
        case AccountDecider.streamCategory:
            switch try AccountEvent.codec.decodeIfKnown(event) {
            case .debited(let debited)?:
                try await creditDestination(after: debited, causedBy: event)
            case .credited(let credited)?:
                try await completeTransfer(after: credited, causedBy: event)
            default:
                break
            }
        default:
            break
        }
    }

    /// The first step: take the money from the source account.
    private func debitSource(for requested: TransferRequested, causedBy event: RecordedEvent) async throws {
        // Only a transfer that is still waiting for its debit gets one. Seeing the request again after the
        // transfer failed must not debit a source that has the money by now.
        let (transfer, _) = try await transfers.load(event.stream)
        guard transfer.status == .requested else { return }
        let debit = AccountCommand.debit(
            transferID: requested.transferID,
            amount: requested.amount,
            toAccountID: requested.toAccountID
        )
        do {
            try await accounts.handle(
                debit,
                on: .account(requested.fromAccountID),
                metadata: CommandMetadata(causedBy: event, index: 0)
            )
        } catch let refusal as AccountRejection {
            try await transfers.handle(
                .fail(reason: "\(requested.fromAccountID): \(refusal)"),
                on: event.stream,
                metadata: CommandMetadata(causedBy: event, index: 1)
            )
        }
    }

    /// The second step: record the debit and give the money to the destination, or give it back.
    private func creditDestination(after debited: AccountDebited, causedBy event: RecordedEvent) async throws {
        let transfer = try StreamName.transfer(debited.transferID)
        try await transfers.handle(.recordDebit, on: transfer, metadata: CommandMetadata(causedBy: event, index: 0))
        let credit = AccountCommand.credit(
            transferID: debited.transferID,
            amount: debited.amount,
            fromAccountID: debited.accountID
        )
        do {
            try await accounts.handle(
                credit,
                on: .account(debited.toAccountID),
                metadata: CommandMetadata(causedBy: event, index: 1)
            )
        } catch let refusal as AccountRejection {
            // The compensation: the source gets its money back, and the transfer says why.
            try await accounts.handle(
                .refund(transferID: debited.transferID),
                on: event.stream,
                metadata: CommandMetadata(causedBy: event, index: 2)
            )
            try await transfers.handle(
                .compensate(reason: "\(debited.toAccountID): \(refusal)"),
                on: transfer,
                metadata: CommandMetadata(causedBy: event, index: 3)
            )
        }
    }

    /// The last step: the money arrived.
    private func completeTransfer(after credited: AccountCredited, causedBy event: RecordedEvent) async throws {
        try await transfers.handle(
            .complete,
            on: .transfer(credited.transferID),
            metadata: CommandMetadata(causedBy: event, index: 0)
        )
    }
}

extension TransferProcessManager {
    /// Runs the process manager until it has reacted to every event, including the events its own
    /// reactions recorded, and returns how many passes over the store that took.
    ///
    /// Each pass is a `ProjectionRunner.catchUp()` from the checkpoint in `checkpoints`; a reaction
    /// appends events that the next pass sees, and the process is settled when a pass finds nothing
    /// new. (A service would run the process manager with `ProjectionRunner.run()` instead; the loop
    /// keeps the demo and the tests deterministic.)
    @discardableResult
    func runUntilSettled(checkpoints: any CheckpointStore) async throws -> Int {
        let runner = ProjectionRunner(projection: asProjection, store: accounts.store, checkpoints: checkpoints)
        var passes = 1
        while try await runner.catchUp() > 0 {
            passes += 1
        }
        return passes
    }
}
