// `swift run bank-example`: accounts and transfers, told step by step. The demo lives in BankDemo.swift,
// where the tests can run it too.
try await runBankDemo()
