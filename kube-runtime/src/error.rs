//! The runtime's one error type: what can go wrong using the client, by layer.

use crate::transport::TransportError;

/// What can go wrong using the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (invalid parameters).
    #[error(transparent)]
    Request(kube_proto::RequestError),
    /// The server answered with an error, or with something unreadable.
    #[error(transparent)]
    Api(kube_proto::ResponseError),
    /// The transport failed.
    #[error(transparent)]
    Transport(TransportError),
    /// Credentials could not be had.
    #[error(transparent)]
    Auth(kube_proto::config::ConfigError),
    /// A watch event did not decode.
    #[error(transparent)]
    Decode(kube_proto::WatchDecodeError),
    /// The watcher saw an error and goes on.
    #[error(transparent)]
    Watcher(kube_proto::watcher::WatcherError),
    /// The answer to an exec, attach or port-forward upgrade did not complete the WebSocket
    /// handshake (a refusal with a `Status`, such as a missing pod, is [`Error::Api`]).
    #[error(transparent)]
    Handshake(kube_proto::websocket::HandshakeError),
    /// An exec or attach session failed: the command could not run, the connection was lost
    /// before its status, the server broke the channel protocol.
    #[error(transparent)]
    Exec(kube_proto::channel::ExecError),
    /// A port-forward session failed.
    #[error(transparent)]
    PortForward(kube_proto::channel::PortForwardError),
    /// Discovery failed, or a name did not resolve to a resource.
    #[error(transparent)]
    Discovery(kube_proto::discovery::DiscoveryError),
    /// An exec, attach or port-forward session was aborted by its user.
    #[error("the session was aborted")]
    Aborted,
}
