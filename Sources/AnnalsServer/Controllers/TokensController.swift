import Annals
import AnnalsWire
import Hummingbird

/// The token routes (admin): list, create, revoke.
struct TokensController<Context: AnnalsRequestContext>: AnnalsController {
    let environment: AnnalsEnvironment

    var handlers: [RouteSpec.ID: RouteHandler<Context>] {
        let tokens = environment.tokens
        return [
            .listTokens: { _, _ in
                AnnalsEnvironment.json(TokenInfo.encodeList(try await tokens.registry.all().map { TokenInfo($0) }))
            },
            .createToken: { request, _ in
                try AnnalsEnvironment.requireJSON(request)
                let body = try await environment.collect(request)
                let created = try await tokens.registry.create(try TokenRequest(decoding: body))
                tokens.invalidate()
                return AnnalsEnvironment.json(created.encoded(), status: .created)
            },
            .revokeToken: { _, context in
                let id = context.annals.tokenID ?? ""
                guard try await tokens.registry.revoke(id: id) else { throw EventStoreError.tokenNotFound(id: id) }
                tokens.invalidate()
                return Response(status: .noContent)
            },
        ]
    }
}
