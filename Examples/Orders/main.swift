// `swift run orders-example`: the order system, told step by step. The demo lives in OrdersDemo.swift,
// where the tests can run it too.
try await runOrdersDemo()
