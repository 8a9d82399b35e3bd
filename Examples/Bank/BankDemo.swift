import Annals
import Foundation

/// Runs the bank on an in-memory store and tells what happens, step by step.
///
/// Accounts are opened and funded; an overdraft and a deposit into a closed account are refused;
/// three transfers run through the `TransferProcessManager` (one completes, one is compensated, one
/// fails); a projection reports the balances; and the state is rebuilt from the events, twice over.
func runBankDemo() async throws {
    let store = try InMemoryEventStore()
    let bank = Bank(store: store)
    let processCheckpoints = InMemoryCheckpointStore()
    let now = Date()

    func send(_ command: AccountCommand, to accountID: String) async throws {
        try await narrate(command, to: accountID, via: bank.accounts)
    }

    func transfer(_ transferID: String, from source: String, to destination: String, amount: Int) async throws {
        let stream = try StreamName.transfer(transferID)
        print("  > \(stream): request \(AccountMoney.format(amount)) from \(source) to \(destination)")
        try await bank.requestTransfer(transferID, from: source, to: destination, amount: amount, at: now)
        let passes = try await bank.transferProcess.runUntilSettled(checkpoints: processCheckpoints)
        let settled = try await bank.transfer(transferID)
        let status = settled.status?.rawValue ?? "unknown"
        print("  The process manager settled it in \(passes) passes: \(status)")
        if let reason = settled.failureReason {
            print("  because \(reason)")
        }
        print("  Every event of the transfer, found by its correlation id:")
        let correlationID = Bank.correlationID(ofTransfer: transferID)
        for event in try await store.readAll()
        where EventMetadata(decoding: event.metadata).correlationID == correlationID {
            print("    position \(event.position): \(event.type) in \(event.stream)")
        }
    }

    print("Annals: the bank")

    heading("1. Accounts are opened and money comes in")
    try await send(.open(accountID: "alice", owner: "Alice Martin"), to: "alice")
    try await send(.open(accountID: "bob", owner: "Bob Dupont"), to: "bob")
    try await send(.open(accountID: "carol", owner: "Carol Smith"), to: "carol")
    try await send(.deposit(amount: 10_000), to: "alice")
    try await send(.deposit(amount: 2_000), to: "bob")

    heading("2. The rules say no")
    try await send(.withdraw(amount: 50_000), to: "bob")
    try await send(.close, to: "alice")
    try await send(.close, to: "carol")
    try await send(.deposit(amount: 500), to: "carol")
    try await send(.deposit(amount: 500), to: "dave")

    heading("3. Transfer t1: Alice pays Bob 30.00 EUR")
    try await transfer("t1", from: "alice", to: "bob", amount: 3_000)

    heading("4. Transfer t2: Alice pays Carol 10.00 EUR, but Carol's account is closed")
    try await transfer("t2", from: "alice", to: "carol", amount: 1_000)

    heading("5. Transfer t3: Bob pays Alice 500.00 EUR, which he does not have")
    try await transfer("t3", from: "bob", to: "alice", amount: 50_000)

    heading("6. Balances, from the projection")
    let balances = AccountBalanceProjection()
    let runner = ProjectionRunner(projection: balances, store: store, checkpoints: InMemoryCheckpointStore())
    let applied = try await runner.catchUp()
    print("  Caught up with the store: \(applied) account events applied.")
    printBalances(balances.balances)

    heading("7. Rebuilding state from the events")
    let before = balances.balances
    try await runner.rebuild()
    print("  rebuild() cleared the read model (\(balances.balances.count) accounts) and forgot its checkpoint.")
    let replayed = try await runner.catchUp()
    let verdict = balances.balances == before ? "the same as before" : "DIFFERENT from before"
    print("  catchUp() replayed \(replayed) events: the balances are \(verdict).")
    for accountID in ["alice", "bob", "carol"] {
        let (account, revision) = try await bank.accounts.load(.account(accountID))
        let folded = revision.map { String($0.value + 1) } ?? "no"
        let status = account.status?.rawValue ?? "unknown"
        let matches = balances.balance(of: accountID)?.balance == account.balance ? "matches" : "DOES NOT MATCH"
        print(
            "  load(account-\(accountID)) folded \(folded) events: \(AccountMoney.format(account.balance)), "
                + "\(status) (\(matches) the projection)"
        )
    }

    heading("8. Seeing every event again moves no money twice")
    let head = try await store.headPosition()
    let passes = try await bank.transferProcess.runUntilSettled(checkpoints: InMemoryCheckpointStore())
    let grown = try await store.headPosition().value - head.value
    print("  The process manager ran again from a fresh checkpoint (\(passes) passes): \(grown) new events.")
    _ = try await runner.catchUp()
    printBalances(balances.balances)
}

/// Sends a command to an account and prints what came of it: the events recorded, or why it was refused.
private func narrate(
    _ command: AccountCommand,
    to accountID: String,
    via accounts: CommandHandler<AccountDecider>
) async throws {
    let stream = try StreamName.account(accountID)
    print("  > \(stream): \(command)")
    do {
        let result = try await accounts.handle(command, on: stream)
        if result.events.isEmpty {
            print("      nothing to record: the account is that way already")
        } else {
            let events = result.events.map(\.description).joined(separator: ", ")
            print("      recorded \(events); balance \(AccountMoney.format(result.state.balance))")
        }
    } catch let rejection as AccountRejection {
        print("      REFUSED: \(rejection)")
    }
}

private func heading(_ title: String) {
    print("\n\(title)")
}

private func printBalances(_ balances: [AccountBalance]) {
    print("    " + column("account", 9) + column("owner", 15) + "balance")
    for account in balances {
        let balance = AccountMoney.format(account.balance) + (account.isClosed ? " (closed)" : "")
        print("    " + column(account.accountID, 9) + column(account.owner, 15) + balance)
    }
}

/// `text` padded with spaces to `width` characters.
private func column(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(1, width - text.count))
}
