//! What the hand-written upgrade servers share: a TLS listener on `127.0.0.1` with a fresh CA,
//! served by a handler per connection on a thread with its own tokio runtime, stopped when
//! dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use kube_proto::config::{AuthSpec, Config, SecretString};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer};

use crate::pki::Pki;
use crate::server::TOKEN;

/// A TLS connection accepted by a [`TlsLoopback`].
pub(crate) type Tls = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// A running TLS listener on `127.0.0.1` (HTTP/1.1 by ALPN, a certificate for `127.0.0.1`).
pub(crate) struct TlsLoopback {
    addr: SocketAddr,
    pki: Pki,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsLoopback {
    /// Listens with a CA named `ca`, on a thread named `name-PORT`, and runs `serve` on every
    /// connection once its TLS handshake is done.
    pub(crate) fn start<F, Fut>(ca: &str, name: &str, serve: F) -> TlsLoopback
    where
        F: Fn(Tls) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let pki = Pki::new(ca);
        let leaf = pki.server(&["127.0.0.1"]);
        let key = PrivateKeyDer::try_from(leaf.key_der.clone()).expect("the server key");
        let mut tls = rustls::ServerConfig::builder_with_provider(kube_runtime::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key)
            .expect("the server certificate");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let (shutdown, stopped) = oneshot::channel();
        let serve = Arc::new(serve);
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    let accept = async {
                        loop {
                            let Ok((tcp, _)) = listener.accept().await else { continue };
                            let _ = tcp.set_nodelay(true);
                            let (acceptor, serve) = (acceptor.clone(), serve.clone());
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    serve(tls).await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("the server thread");
        TlsLoopback { addr, pki, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// The base URL, `https://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> url::Url {
        format!("https://127.0.0.1:{}", self.addr.port()).parse().expect("a valid URL")
    }

    /// The server's CA and the token the servers accept ([`TOKEN`]).
    pub(crate) fn config(&self) -> Config {
        let mut config = Config::new(self.url());
        config.root_certs = vec![self.pki.ca_der.clone()];
        config.auth = AuthSpec::Token(SecretString::new(TOKEN));
        config
    }
}

impl Drop for TlsLoopback {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
