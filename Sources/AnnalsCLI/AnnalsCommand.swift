import Annals
import ArgumentParser

/// `annals`: the command-line tool for Annals stores.
@main
struct AnnalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annals",
        abstract: "Annals: an event store and event-sourcing toolkit for Swift.",
        discussion: """
            `serve` runs the HTTP server. The other commands work on a file store's data directory \
            (--data DIR, the default ./annals-data), a PostgreSQL store (--postgres URL) or a running \
            server (--server URL --token T).
            """,
        version: AnnalsVersion.current,
        subcommands: [
            Serve.self, Token.self, Append.self, Read.self, Subscribe.self, Streams.self, Export.self, Import.self,
            Verify.self, Bench.self, Version.self, CrashWorkload.self,
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
