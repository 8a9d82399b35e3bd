import Annals
import Foundation
import Logging
import Testing

@testable import AnnalsFileStore

@Suite("File store verification report")
struct VerificationReportTests {
    @Test(
        "a small store reports the bytes its log uses, not the preallocated segment size", .timeLimit(.minutes(1)))
    func usedBytesOfASmallStore() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = FileEventStore.Configuration(
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let segmentSize = configuration.segmentSize
        try await FileEventStore.withStore(at: directory.path, configuration: configuration) { store in
            for index in 0..<9 {
                let event = EventData(type: "Counted", data: Data(#"{"n":\#(index)}"#.utf8))
                _ = try await store.append([event], to: try StreamName("counter-\(index % 3)"))
            }
        }
        let file = try #require(try Durability.segments(directory.path).first)
        let fileSize = try #require(try URL(fileURLWithPath: file).resourceValues(forKeys: [.fileSizeKey]).fileSize)
        #expect(fileSize >= segmentSize, "the segment being written is preallocated")

        let report = try FileEventStore.verify(at: directory.path)
        #expect(report.isHealthy, "\(report.findings.map(\.description))")
        #expect(report.events == 9)
        let segment = try #require(report.segments.first)
        #expect(report.segments.count == 1)
        let endOfLastRecord = try #require(try Durability.recordRanges(file).last?.upperBound)
        #expect(segment.bytes == endOfLastRecord)
        #expect(report.bytes == segment.bytes)
        #expect(report.bytes < 64 * 1024, "9 small events use \(report.bytes) bytes of a \(fileSize)-byte file")
    }

    @Test("across segments, the used bytes are each segment's header and records, summed", .timeLimit(.minutes(1)))
    func usedBytesAcrossSegments() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tiny())
        let (_, failure) = await Durability.workload(store, count: 60, seed: 29)
        #expect(failure == nil)
        await store.close()
        let files = try Durability.segments(directory.path)
        #expect(files.count > 2, "the workload must cross segment boundaries")
        var expected: [String: Int64] = [:]
        for file in files {
            let name = Recovery.segmentsDirectoryName + "/" + URL(fileURLWithPath: file).lastPathComponent
            expected[name] = try Durability.recordRanges(file).last?.upperBound ?? Int64(SegmentHeader.size)
        }

        let report = try FileEventStore.verify(at: directory.path)
        #expect(report.isHealthy, "\(report.findings.map(\.description))")
        #expect(Dictionary(uniqueKeysWithValues: report.segments.map { ($0.file, $0.bytes) }) == expected)
        #expect(report.bytes == expected.values.reduce(0, +))
    }
}
