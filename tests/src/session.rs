//! The fake API server's exec, attach and port-forward sessions run over a real connection,
//! for the loopback servers that switch protocols ([`TestServer`](crate::TestServer) and
//! [`ExecServer`](crate::exec_server::ExecServer)).

use std::time::Duration;

use kube_runtime::fake::server::FakeSession;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Runs `session` over `io` (the connection after the `101`), as a socket would: what the
/// session queues is written, what the client sends is fed to it, until it is over. `early` are
/// bytes read past the request's head, fed first. With `cut_after`, the connection is dropped
/// once that many bytes of the session were written: no WebSocket close, and for TLS no
/// closing alert.
pub(crate) async fn run_session<S>(mut session: Box<FakeSession>, mut io: S, early: &[u8], cut_after: Option<usize>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !early.is_empty() {
        let _ = session.handle_client_bytes(early);
    }
    let mut written = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            if let Some(limit) = cut_after
                && written + bytes.len() >= limit
            {
                let _ = io.write_all(&bytes[..limit - written]).await;
                let _ = io.flush().await;
                // Dropped as it is: the client reads the end of TCP with no closing alert.
                return;
            }
            if io.write_all(&bytes).await.is_err() {
                return;
            }
            written += bytes.len();
        }
        if io.flush().await.is_err() {
            return;
        }
        if session.is_closed() {
            // As the API server does, the connection ends after the close frame without waiting
            // for the echo; what the client still sends is read and dropped for a while, so
            // that the end is a clean one rather than a reset.
            let _ = io.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
            return;
        }
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => session.handle_client_eof(),
            Ok(n) => {
                // A protocol violation queues the session's close, written next round.
                let _ = session.handle_client_bytes(&buf[..n]);
            }
        }
    }
}
