import Annals
import Foundation

// A money transfer between two accounts, as its own aggregate (stream `transfer-<id>`). It only keeps
// the record: the TransferProcessManager moves the money and reports each step back here.
//
//     requested ---> sourceDebited ---> completed
//         |                |
//         |                '----------> compensated  (the credit was refused; the debit was given back)
//         '---------------------------> failed       (the debit was refused; no money moved)

// MARK: - Commands

/// What someone (or the transfer process) asks of a transfer. Amounts are in cents.
enum TransferCommand: Sendable, Equatable {
    /// Asks for `amount` to move from one account to another.
    case request(transferID: String, from: String, to: String, amount: Int, at: Date)
    /// Records that the source account was debited.
    case recordDebit
    /// Records that the destination account was credited: the transfer is done.
    case complete
    /// Records that the source account refused the debit: no money moved.
    case fail(reason: String)
    /// Records that the destination refused the credit and the source got its money back.
    case compensate(reason: String)
}

// MARK: - Events

/// A transfer was asked for.
struct TransferRequested: Codable, Sendable, Equatable {
    static let typeName = "TransferRequested"

    var transferID: String
    var fromAccountID: String
    var toAccountID: String
    var amount: Int
    var requestedAt: Date
}

/// The transfer's money left the source account.
struct TransferSourceDebited: Codable, Sendable, Equatable {
    static let typeName = "TransferSourceDebited"

    var transferID: String
}

/// The transfer's money reached the destination account.
struct TransferCompleted: Codable, Sendable, Equatable {
    static let typeName = "TransferCompleted"

    var transferID: String
}

/// The source account refused the debit; no money moved.
struct TransferFailed: Codable, Sendable, Equatable {
    static let typeName = "TransferFailed"

    var transferID: String
    var reason: String
}

/// The destination refused the credit, and the source account was refunded.
struct TransferCompensated: Codable, Sendable, Equatable {
    static let typeName = "TransferCompensated"

    var transferID: String
    var reason: String
}

/// Everything that can happen to a transfer: one case per event, one `Codable` payload per case.
enum TransferEvent: Sendable, Equatable {
    case requested(TransferRequested)
    case sourceDebited(TransferSourceDebited)
    case completed(TransferCompleted)
    case failed(TransferFailed)
    case compensated(TransferCompensated)

    /// Maps transfer events to stored events and back.
    static let codec = EventCodec<TransferEvent>()
        .registering(TransferRequested.self, as: TransferRequested.typeName, TransferEvent.requested)
        .registering(TransferSourceDebited.self, as: TransferSourceDebited.typeName, TransferEvent.sourceDebited)
        .registering(TransferCompleted.self, as: TransferCompleted.typeName, TransferEvent.completed)
        .registering(TransferFailed.self, as: TransferFailed.typeName, TransferEvent.failed)
        .registering(TransferCompensated.self, as: TransferCompensated.typeName, TransferEvent.compensated)
}

// MARK: - State

/// How far a transfer has gone.
enum TransferStatus: String, Sendable, Equatable {
    /// Asked for; the source is not debited yet.
    case requested
    /// The money left the source; the destination is not credited yet.
    case sourceDebited
    /// The money reached the destination.
    case completed
    /// The source refused the debit.
    case failed
    /// The destination refused the credit; the source was refunded.
    case compensated
}

/// What the decider knows of a transfer, folded from its events.
struct TransferState: Sendable, Equatable {
    /// `nil` until the transfer is requested.
    var request: TransferRequested?
    /// `nil` until the transfer is requested.
    var status: TransferStatus?
    /// Why the transfer failed or was compensated.
    var failureReason: String?
}

// MARK: - Rejections

/// Why a transfer refused a command.
enum TransferRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The transfer was never requested.
    case transferNotFound
    /// `request` on a transfer that exists already.
    case alreadyRequested
    /// A transfer from an account to itself.
    case sameAccount
    /// An amount of zero, a negative one, or one above ``AccountDecider/maximumAmount``.
    case invalidAmount(Int)
    /// `complete` or `compensate` before the source was debited.
    case sourceNotDebited
    /// `fail` after the source was debited: the money must be refunded instead.
    case sourceAlreadyDebited
    /// Any other step on a completed transfer.
    case alreadyCompleted
    /// Any other step on a failed transfer.
    case alreadyFailed
    /// Any other step on a compensated transfer.
    case alreadyCompensated

    var description: String {
        switch self {
        case .transferNotFound: "there is no such transfer"
        case .alreadyRequested: "the transfer has been requested already"
        case .sameAccount: "a transfer needs two different accounts"
        case .invalidAmount(let amount): "\(amount) cents is not a valid amount"
        case .sourceNotDebited: "the source account has not been debited"
        case .sourceAlreadyDebited: "the source account has been debited; refund it instead"
        case .alreadyCompleted: "the transfer is completed"
        case .alreadyFailed: "the transfer has failed"
        case .alreadyCompensated: "the transfer has been compensated"
        }
    }
}

// MARK: - Decider

/// The rules of a transfer's record.
///
/// A transfer is requested once, between two different accounts, for a valid amount. Each later step
/// is accepted only where the diagram at the top of this file allows it, and repeating the step that
/// led to the current status decides no events, so the process manager may repeat itself safely.
struct TransferDecider: Decider {
    typealias State = TransferState
    typealias Command = TransferCommand
    typealias Event = TransferEvent
    typealias Rejection = TransferRejection

    /// The category of transfer streams: `transfer-<id>`.
    static let streamCategory = "transfer"

    var initialState: TransferState { TransferState() }

    func decide(_ command: TransferCommand, state: TransferState) throws(TransferRejection) -> [TransferEvent] {
        if case .request(let transferID, let from, let to, let amount, let time) = command {
            guard state.status == nil else { throw .alreadyRequested }
            guard from != to else { throw .sameAccount }
            guard AccountDecider.isValid(amount: amount) else { throw .invalidAmount(amount) }
            let requested = TransferRequested(
                transferID: transferID,
                fromAccountID: from,
                toAccountID: to,
                amount: amount,
                requestedAt: time
            )
            return [.requested(requested)]
        }
        guard let request = state.request, let status = state.status else { throw .transferNotFound }
        let transferID = request.transferID
        switch (command, status) {
        case (.request, _):
            throw .alreadyRequested

        case (.recordDebit, .requested):
            return [.sourceDebited(TransferSourceDebited(transferID: transferID))]
        case (.recordDebit, .sourceDebited), (.recordDebit, .completed), (.recordDebit, .compensated):
            return []

        case (.complete, .sourceDebited):
            return [.completed(TransferCompleted(transferID: transferID))]
        case (.complete, .completed):
            return []
        case (.complete, .requested), (.compensate, .requested):
            throw .sourceNotDebited

        case (.fail(let reason), .requested):
            return [.failed(TransferFailed(transferID: transferID, reason: reason))]
        case (.fail, .failed):
            return []
        case (.fail, .sourceDebited):
            throw .sourceAlreadyDebited

        case (.compensate(let reason), .sourceDebited):
            return [.compensated(TransferCompensated(transferID: transferID, reason: reason))]
        case (.compensate, .compensated):
            return []

        case (_, .completed):
            throw .alreadyCompleted
        case (_, .failed):
            throw .alreadyFailed
        case (_, .compensated):
            throw .alreadyCompensated
        }
    }

    func evolve(_ state: TransferState, _ event: TransferEvent) -> TransferState {
        var state = state
        switch event {
        case .requested(let requested):
            state.request = requested
            state.status = .requested
        case .sourceDebited:
            state.status = .sourceDebited
        case .completed:
            state.status = .completed
        case .failed(let failed):
            state.status = .failed
            state.failureReason = failed.reason
        case .compensated(let compensated):
            state.status = .compensated
            state.failureReason = compensated.reason
        }
        return state
    }
}

extension StreamName {
    /// The stream of one transfer: `transfer-<id>`.
    static func transfer(_ transferID: String) throws(EventStoreError) -> StreamName {
        try StreamName("\(TransferDecider.streamCategory)-\(transferID)")
    }
}
