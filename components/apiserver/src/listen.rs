//! The accept loop: TCP → (TLS handshake) → HTTP/1.1 or HTTP/2 → the axum router.
//!
//! Each accepted connection runs in its own task. After the TLS handshake (bounded by
//! [`HANDSHAKE_TIMEOUT`]) the peer's certificate chain is put into every request's
//! extensions as [`ConnInfo`], where the authenticators find it. On shutdown the listener
//! stops accepting, open connections get a graceful close (in-flight requests finish) and
//! whatever is still open after [`DRAIN`] — typically long watches — is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections before dropping them.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What the transport knows about a request's connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// The certificate chain the client presented (leaf first), if any.
    pub peer_certificates: Option<Arc<[CertificateDer<'static>]>>,
}

/// Serves `router` on `listener` (TLS when `tls` is set) until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                    let peer_certificates = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|c| !c.is_empty())
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
                    let info = ConnInfo {
                        remote,
                        peer_certificates,
                    };
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        service(router, info),
                    );
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                }
                None => {
                    let info = ConnInfo {
                        remote,
                        peer_certificates: None,
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service(router, info));
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after the drain period were closed");
    }
    Ok(())
}

/// The per-connection hyper service: tags requests with [`ConnInfo`] and calls the router.
fn service(
    router: axum::Router,
    info: ConnInfo,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    })
}
