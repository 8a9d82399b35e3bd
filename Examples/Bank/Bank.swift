import Annals
import Foundation

/// The bank's parts wired to one store: a command handler per aggregate and the transfer process.
struct Bank: Sendable {
    let store: any EventStore
    let accounts: CommandHandler<AccountDecider>
    let transfers: CommandHandler<TransferDecider>
    let transferProcess: TransferProcessManager

    init(store: any EventStore) {
        let accounts = CommandHandler(store: store, decider: AccountDecider(), codec: AccountEvent.codec)
        let transfers = CommandHandler(store: store, decider: TransferDecider(), codec: TransferEvent.codec)
        self.store = store
        self.accounts = accounts
        self.transfers = transfers
        self.transferProcess = TransferProcessManager(accounts: accounts, transfers: transfers)
    }

    /// The correlation id that ties together every event of one transfer.
    static func correlationID(ofTransfer transferID: String) -> String {
        "\(TransferDecider.streamCategory)-\(transferID)"
    }

    /// Asks for a transfer. The money moves when the transfer process runs.
    ///
    /// - Throws: ``TransferRejection`` when the request itself is refused.
    @discardableResult
    func requestTransfer(
        _ transferID: String,
        from source: String,
        to destination: String,
        amount: Int,
        at time: Date
    ) async throws -> CommandResult<TransferDecider> {
        try await transfers.handle(
            .request(transferID: transferID, from: source, to: destination, amount: amount, at: time),
            on: .transfer(transferID),
            metadata: CommandMetadata(correlationID: Self.correlationID(ofTransfer: transferID))
        )
    }

    /// An account as its events tell it.
    func account(_ accountID: String) async throws -> AccountState {
        try await accounts.load(.account(accountID)).state
    }

    /// A transfer as its events tell it.
    func transfer(_ transferID: String) async throws -> TransferState {
        try await transfers.load(.transfer(transferID)).state
    }
}
