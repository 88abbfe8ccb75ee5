//! The fake API server's exec, attach and port-forward sessions run over a real connection,
//! for the loopback servers that switch protocols ([`TestServer`](crate::TestServer) and
//! [`ExecServer`](crate::exec_server::ExecServer)).

use std::time::Duration;

use kube_runtime::fake::server::FakeSession;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Runs `session` over `io` (the connection after the `101`), as a socket would: what the
/// session queues is written, what the client sends is fed to it, until it is over. Reading and
/// writing go on at once, so that a client that writes without reading until its write is done
/// (kube-rs's port-forward) does not wedge against a server with bytes of its own to write.
/// `early` are bytes read past the request's head, fed first. With `cut_after`, the connection
/// is dropped once that many bytes of the session were written: no WebSocket close, and for TLS
/// no closing alert.
pub(crate) async fn run_session<S>(mut session: Box<FakeSession>, io: S, early: &[u8], cut_after: Option<usize>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !early.is_empty() {
        let _ = session.handle_client_bytes(early);
    }
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut written = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes the session queued and not yet written, from `at`.
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0usize;
    let mut eof = false;
    loop {
        if at == out.len() {
            out.clear();
            at = 0;
            while let Some(bytes) = session.poll_transmit() {
                out.extend_from_slice(&bytes);
            }
        }
        let limit = cut_after.map_or(usize::MAX, |limit| limit - written);
        if limit == 0 {
            let _ = writer.flush().await;
            // Dropped as it is: the client reads the end of TCP with no closing alert.
            return;
        }
        if at == out.len() {
            if writer.flush().await.is_err() {
                return;
            }
            if session.is_closed() {
                // As the API server does, the connection ends after the close frame without
                // waiting for the echo; what the client still sends is read and dropped for a
                // while, so that the end is a clean one rather than a reset.
                let _ = writer.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
                return;
            }
            if eof {
                return;
            }
        }
        let pending = &out[at..out.len().min(at.saturating_add(limit))];
        tokio::select! {
            wrote = writer.write(pending), if !pending.is_empty() => match wrote {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    at += n;
                    written += n;
                }
            },
            read = reader.read(&mut buf), if !eof => match read {
                Ok(0) | Err(_) => {
                    eof = true;
                    session.handle_client_eof();
                }
                Ok(n) => {
                    // A protocol violation queues the session's close, written next round.
                    let _ = session.handle_client_bytes(&buf[..n]);
                }
            },
        }
    }
}
