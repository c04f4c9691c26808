//! KMIP over a TLS socket (`--socket-server-start`, port 5696): what storage arrays,
//! hypervisors and PyKMIP speak. Mutual TLS with the server's PKCS#12 and client certificates
//! checked against `--authority-cert-file` (the user is the certificate's CN, as on HTTPS); then
//! binary TTLV request messages, many per connection, each answered in order by the same core
//! as `/kmip` (`http::process_tree`: KMIP 1.x and 2.x, batches, rights, every backend).
//!
//! Framing is read exactly: the 8-byte header first, its tag, type and length checked against
//! the limits before the body is read. A message that is framed but does not decode gets a KMIP
//! error response and the connection goes on; a header that cannot be trusted (wrong tag or
//! type, a length over the limit) gets an error response and the connection is closed. Idle
//! connections, slow bodies and slow readers time out; connections are capped; a connection's
//! problems touch no other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kmip::{Tag, binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

use crate::error::KmsError;
use crate::http::AppState;

/// How long a connection may wait between two messages.
const IDLE: Duration = Duration::from_secs(120);
/// How long the TLS handshake, reading one message's body, or writing one answer may take.
const PER_MESSAGE: Duration = Duration::from_secs(30);
/// `Structure`.
const STRUCTURE: u8 = 0x01;

/// A running socket server: its address, and how to stop it.
pub struct SocketServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SocketServer {
    /// Stops accepting; connections finish the message in hand, then close.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `listen` and serves KMIP on it.
pub fn start(
    state: Arc<AppState>,
    tls: Arc<rustls::ServerConfig>,
    listen: SocketAddr,
    max_connections: usize,
) -> std::io::Result<SocketServer> {
    let std_listener = std::net::TcpListener::bind(listen)?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let addr = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let task = tokio::spawn(async move {
        let mut stopping_accept = stopping.clone();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopping_accept.changed() => break,
            };
            let Ok((tcp, peer)) = accepted else {
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "KMIP socket: too many connections; refusing one");
                drop(tcp);
                continue;
            };
            let (state, acceptor, stopping) = (state.clone(), acceptor.clone(), stopping.clone());
            connections.spawn(async move {
                serve_connection(&state, acceptor, tcp, peer, stopping).await;
                drop(permit);
            });
            // Reap finished connections so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
    });
    tracing::info!(%addr, "KMIP socket server listening (TLS, client certificates required)");
    Ok(SocketServer { addr, stop, task })
}

async fn serve_connection(
    state: &AppState,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let _open = crate::observe::OpenConnection::new("socket");
    let mut stream = match tokio::time::timeout(PER_MESSAGE, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "KMIP socket: TLS handshake refused");
            return;
        }
        Err(_) => return,
    };
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.as_ref().to_vec());
    let identity = crate::listener::PeerIdentity {
        common_name: leaf.as_deref().and_then(crate::tls::common_name),
        email: leaf.as_deref().and_then(crate::tls::email),
    };
    let user = match state.auth.user(&state.kms, &identity, None).await {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(%peer, error = %e, "KMIP socket: client not authenticated");
            return;
        }
    };
    loop {
        let mut header = [0u8; 8];
        let read = tokio::select! {
            r = tokio::time::timeout(IDLE, stream.read_exact(&mut header)) => r,
            _ = stopping.changed() => break,
        };
        match read {
            Ok(Ok(_)) => {}
            // Closed, reset, or idle too long.
            _ => break,
        }
        let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
        let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let framing_error = if tag != Tag::REQUEST_MESSAGE.0 || header[3] != STRUCTURE {
            Some(format!(
                "expected a RequestMessage structure, found tag {tag:06X} of type {:02X}",
                header[3]
            ))
        } else if length > state.limits.max_message_size {
            Some(format!(
                "the message announces {length} bytes, more than the server's limit of {} \
                 (--max-request-size)",
                state.limits.max_message_size
            ))
        } else {
            None
        };
        if let Some(reason) = framing_error {
            let answer = crate::http::invalid_message(2, 1, &KmsError::InvalidMessage(reason));
            let _ = write(&mut stream, &binary::encode(&answer.encode())).await;
            break;
        }
        let mut message = vec![0u8; 8 + length];
        message[..8].copy_from_slice(&header);
        match tokio::time::timeout(PER_MESSAGE, stream.read_exact(&mut message[8..])).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let answer = crate::observe::socket_message(async {
            crate::observe::set_user(&user);
            match binary::decode(&message, &state.limits) {
                Ok(tree) => crate::http::process_tree(state, &user, tree, message.len()).await,
                Err(e) => crate::http::invalid_message(2, 1, &KmsError::Codec(e)).encode(),
            }
        })
        .await;
        if write(&mut stream, &binary::encode(&answer)).await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

async fn write<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), ()> {
    match tokio::time::timeout(PER_MESSAGE, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
