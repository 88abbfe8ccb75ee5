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
}
