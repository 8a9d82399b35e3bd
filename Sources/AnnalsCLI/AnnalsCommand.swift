import Annals
import ArgumentParser

/// `annals`: the command-line tool for Annals stores.
@main
struct AnnalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annals",
        abstract: "Annals: an event store and event-sourcing toolkit for Swift.",
        discussion: """
            Works directly on a file store's data directory (--data DIR). The server brings `serve` and \
            remote use (--server URL).
            """,
        version: AnnalsVersion.current,
        subcommands: [
            Serve.self, Token.self, Append.self, Read.self, Streams.self, Verify.self, Bench.self, Version.self,
            CrashWorkload.self,
        ]
    )
}

extension AnnalsCommand {
    /// `annals version`: prints the version of Annals.
    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version of Annals.")

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        func run() {
            if json {
                print("{\"version\":\"\(AnnalsVersion.current)\"}")
            } else {
                print("annals \(AnnalsVersion.current)")
            }
        }
    }
}
