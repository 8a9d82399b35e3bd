import Annals
import AnnalsWire
import Foundation
import Testing

@testable import AnnalsServer

/// The token hash is what every stored token is found by: a wrong digest locks every token out.
@Suite("Token hash and records")
struct TokenHashTests {
    @Test("SHA-256 gives the NIST test vectors and what sha256sum gives")
    func vectors() {
        #expect(SHA256.hex("".utf8) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            SHA256.hex(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
                    .utf8)
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Lengths around the padding boundary (55, 56 and 64 bytes), against sha256sum.
        #expect(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "x"), count: 55))
                == "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072")
        #expect(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "x"), count: 56))
                == "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e")
        #expect(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "x"), count: 64))
                == "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c")
    }

    @Test("a tokens.json written before milliseconds were kept still loads and matches its tokens")
    func oldTokenFile() throws {
        let path = NSTemporaryDirectory() + "annals-tokens-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let token = "annals_Q2x9aB3c_3vX0bq5m7kTtq0wz8yYb1nJc4Hq2d6Rs"
        let old = """
            [
              {
                "createdAt" : "2026-11-20T10:15:30Z",
                "hash" : "\(Tokens.hash(token))",
                "id" : "tok_Q2x9aB3c",
                "name" : "admin",
                "role" : "admin",
                "scopes" : [

                ]
              }
            ]
            """
        try Data(old.utf8).write(to: URL(fileURLWithPath: path))
        let records = try FileTokenRegistry(path: path).all()
        #expect(records.count == 1)
        #expect(records.first?.hash == Tokens.hash(token))
        #expect(records.first?.createdAt == Date(timeIntervalSince1970: 1_795_169_730))
    }

    @Test("a token's creation time reads back to the millisecond")
    func createdAtMilliseconds() async throws {
        let path = NSTemporaryDirectory() + "annals-tokens-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let registry = FileTokenRegistry(path: path)
        let created = try await registry.create(name: "ms", role: .reader, scopes: [])
        let listed = try #require(try registry.all().first)
        #expect(listed.createdAt == created.record.createdAt)
        #expect(WireFormat.timestamp(listed.createdAt) == WireFormat.timestamp(created.record.createdAt))
        #expect(created.record.hash == Tokens.hash(created.token))
    }
}
