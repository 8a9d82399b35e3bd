import Foundation
import Testing

@Suite("README")
struct ReadmeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the README's example is the compiled readme-example target, byte for byte")
    func exampleIsCompiled() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let marker = "<!-- readme-example: Examples/Readme/main.swift -->"
        let afterMarker = try #require(readme.range(of: marker), "the README must mark its example").upperBound
        let fenceStart = try #require(readme.range(of: "```swift\n", range: afterMarker..<readme.endIndex))
        let fenceEnd = try #require(readme.range(of: "\n```", range: fenceStart.upperBound..<readme.endIndex))
        let snippet = String(readme[fenceStart.upperBound..<fenceEnd.lowerBound]) + "\n"
        let source = try String(
            contentsOf: Self.root.appendingPathComponent("Examples/Readme/main.swift"),
            encoding: .utf8
        )
        #expect(snippet == source, "README.md's example and Examples/Readme/main.swift have drifted apart")
    }

    @Test("the README names the two commands a newcomer runs")
    func commands() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("swift run orders-example"))
        #expect(readme.contains("swift test"))
    }
}
