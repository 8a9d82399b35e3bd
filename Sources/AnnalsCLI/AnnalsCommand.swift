import Annals
import ArgumentParser

/// `annals`: the command-line tool for Annals stores.
@main
struct AnnalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annals",
        abstract: "Annals: an event store and event-sourcing toolkit for Swift.",
        discussion: """
            Today the tool reports its version. The file store, PostgreSQL store and server bring \
            `serve`, `append`, `read`, `subscribe`, `streams`, `verify`, `export`, `import` and `bench`.
            """,
        version: AnnalsVersion.current,
        subcommands: [Version.self]
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
