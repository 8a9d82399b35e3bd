#if TLS
    import Annals
    import AnnalsServer
    import HummingbirdCore
    import HummingbirdTLS
    import NIOSSL

    /// The TLS layer of `annals serve --tls-cert … --tls-key …` (the `TLS` trait).
    enum TLSTransport {
        /// A transport that serves TLS with the PEM certificate chain and key at these paths.
        ///
        /// - Throws: `invalid-argument` when either file cannot be read or parsed.
        static func make(certificate: String, key: String) throws(EventStoreError) -> ServerTransport {
            let tls: TLSConfiguration
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map {
                    NIOSSLCertificateSource.certificate($0)
                }
                tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            } catch {
                throw EventStoreError(.invalidArgument, "The TLS certificate or key cannot be loaded: \(error).")
            }
            return ServerTransport { http in try .tls(http, tlsConfiguration: tls) }
        }
    }
#endif
