import Annals
import AnnalsWire
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request the HTTP parser refuses before any route sees it (a raw space in the request
/// line, a header block over the limit) with `400 invalid-argument` and the JSON error body, then
/// closes the connection.
///
/// Without it Hummingbird answers these with an empty `400`, which says nothing a client can act on.
/// A parse error while a request is in flight (its head read, its answer not finished) is passed on:
/// the handler reading that request's body turns it into the same answer (`MalformedFraming`).
final class ParseErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var requestInFlight = false
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { requestInFlight = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { requestInFlight = false }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !requestInFlight else {
            context.fireErrorCaught(error)
            return
        }
        // The parser stops at its first error; any later one on this connection has nothing to add.
        guard !answered else { return }
        answered = true
        let body = WireFormat.encode(
            EventStoreError(.invalidArgument, "The request is not valid HTTP/1.1 (\(Self.describe(parserError)))."))
        var head = HTTPResponse(status: .badRequest)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.count)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The parser's complaint in words (its own descriptions are enum case names).
    static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow: "the header block is too large"
        case .invalidURL, .invalidPath: "the request target is malformed"
        case .invalidMethod: "the method is malformed"
        case .invalidVersion: "the HTTP version is malformed"
        case .invalidHeaderToken, .invalidConstant: "a header or the request line is malformed"
        default: "\(error)"
        }
    }
}
