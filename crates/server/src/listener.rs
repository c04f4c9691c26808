//! What every listener of the server (the KMS port and the bootstrap port) applies to its
//! connections before HTTP: a cap on open connections, and timeouts for clients that connect and
//! then send their headers slowly or not at all (slowloris), so that idle sockets cannot use up
//! the server's file descriptors and memory.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (the first request's included).
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Applies `limits` to a server: the connection cap through its acceptor (see
/// [`LimitedAcceptor`]), the header timeouts through hyper.
///
/// HTTP/1 half-closes are allowed: a client may shut its side of the connection once its
/// request is sent and still get the answer. It also spares every request a read ahead: hyper
/// otherwise polls the connection while a request is served, to see the client leave, and
/// takes a fresh 8 KiB read buffer each time (the one it has is still shared with the request),
/// a large allocation that made glibc's malloc consolidate its free lists on every request. A
/// request whose client left runs to its end, as it would had the client left a moment later.
pub fn configure<A: axum_server::Address, Acc>(
    server: axum_server::Server<A, Acc>,
    limits: ConnectionLimits,
) -> axum_server::Server<A, Acc> {
    let mut server = server.first_request_timeout(limits.header_read_timeout);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .half_close(true);
    server
}

/// An acceptor that holds one of `max_connections` permits for the life of each connection,
/// and refuses a connection when none is left.
#[derive(Clone)]
pub struct LimitedAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<A> LimitedAcceptor<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Self {
        LimitedAcceptor {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        }
    }
}

impl<A, I, S> Accept<I, S> for LimitedAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        // Without a permit the stream is dropped here, which closes the connection.
        let accepted = permit.map(|permit| (permit, self.inner.accept(stream, service)));
        Box::pin(async move {
            let Ok((permit, accepted)) = accepted else {
                tracing::warn!("connection refused: too many open connections (--max-connections)");
                return Err(io::Error::other("too many open connections"));
            };
            let (inner, service) = accepted.await?;
            Ok((
                Limited {
                    inner,
                    _permit: permit,
                    _open: crate::observe::OpenConnection::new("http"),
                },
                service,
            ))
        })
    }
}

/// A connection counted against the cap until it is dropped.
pub struct Limited<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    _open: crate::observe::OpenConnection,
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Who the client certificate a TLS connection presented names (verified against
/// `--authority-cert-file` during the handshake); empty when it presented none.
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity {
    /// The subject common name.
    pub common_name: Option<String>,
    /// The email address (subject alternative name, else subject emailAddress).
    pub email: Option<String>,
}

/// An acceptor after the TLS one that hands every request of a connection who the client's
/// certificate names (see [`PeerIdentity`]).
#[derive(Clone)]
pub struct ClientCertAcceptor<A> {
    inner: A,
}

impl<A> ClientCertAcceptor<A> {
    pub fn new(inner: A) -> Self {
        ClientCertAcceptor { inner }
    }
}

impl<A, I, S, T> Accept<I, S> for ClientCertAcceptor<A>
where
    A: Accept<I, S, Stream = tokio_rustls::server::TlsStream<T>>,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
    T: Send + 'static,
{
    type Stream = tokio_rustls::server::TlsStream<T>;
    type Service = tower_http::add_extension::AddExtension<A::Service, PeerIdentity>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first());
            let identity = PeerIdentity {
                common_name: leaf.and_then(|l| crate::tls::common_name(l.as_ref())),
                email: leaf.and_then(|l| crate::tls::email(l.as_ref())),
            };
            Ok((
                stream,
                tower_http::add_extension::AddExtension::new(service, identity),
            ))
        })
    }
}
