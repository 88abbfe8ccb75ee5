//! The `watcher()` stream: drives the core's watcher state machine with a client, on any
//! executor. It lists, watches, resumes, relists on 410 and backs off by itself; errors are
//! items of the stream, and the stream goes on after them.

use std::pin::Pin;

use futures_core::Stream;
use futures_util::future::{Either, select};
use futures_util::stream::{self, StreamExt};
use kube_proto::Resource;
use kube_proto::watcher::{Action, RequestId, Watcher};
use serde::de::DeserializeOwned;

pub use kube_proto::watcher::{Backoff, Config, Event, InitialListStrategy, ListSemantic, WatcherError};

use crate::transport::Body;
use crate::{Api, Client, Error};

struct Driver<K> {
    machine: Watcher<K>,
    client: Client,
    body: Option<(RequestId, Body)>,
}

/// Watches the collection an `Api` addresses: a stream of [`Event`]s that never ends on its
/// own. See [`WatchStreamExt`] for `applied_objects()` and `touched_objects()`.
pub fn watcher<K>(api: Api<K>, config: Config) -> impl Stream<Item = Result<Event<K>, Error>> + Send
where
    K: Resource + DeserializeOwned + Send + 'static,
    K::DynamicType: Clone,
{
    let machine = Watcher::new(api.request().clone(), config).map_err(Error::Request);
    let client = api.client().clone();
    let start = match machine {
        Ok(machine) => Ok(Driver { machine, client, body: None }),
        Err(e) => Err(e),
    };
    stream::unfold(Some(start), |state| async move {
        match state? {
            Err(e) => Some((Err(e), None)),
            Ok(mut d) => {
                let item = d.next().await;
                Some((item, Some(Ok(d))))
            }
        }
    })
}

impl<K> Driver<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
{
    async fn next(&mut self) -> Result<Event<K>, Error> {
        loop {
            let now = self.client.now();
            match self.machine.poll(now) {
                Action::Emit(ev) => return Ok(ev),
                Action::Error(e) => return Err(Error::Watcher(e)),
                Action::Cancel(id) => {
                    if self.body.as_ref().is_some_and(|(b, _)| *b == id) {
                        self.body = None;
                    }
                }
                Action::Send(id, request) => {
                    self.body = None;
                    match self.client.send_once(request).await {
                        Ok(resp) => {
                            let now = self.client.now();
                            self.machine.on_response(now, id, resp.status, &resp.headers);
                            self.body = Some((id, resp.body));
                        }
                        Err(e) => {
                            let now = self.client.now();
                            self.machine.on_transport_error(now, id, e.to_string());
                        }
                    }
                }
                Action::Wait { until, .. } => {
                    let sleep = until.map(|t| self.client.transport().sleep_until(t));
                    match (&mut self.body, sleep) {
                        (Some((id, body)), sleep) => {
                            let id = *id;
                            let chunk = match sleep {
                                Some(sleep) => match select(body.next(), sleep).await {
                                    Either::Left((chunk, _)) => Some(chunk),
                                    Either::Right(((), _)) => None,
                                },
                                None => Some(body.next().await),
                            };
                            let now = self.client.now();
                            match chunk {
                                None => {} // the deadline passed: poll again
                                Some(Some(Ok(bytes))) => self.machine.on_body(now, id, &bytes),
                                Some(Some(Err(e))) => {
                                    self.body = None;
                                    self.machine.on_transport_error(now, id, e.to_string());
                                }
                                Some(None) => {
                                    self.body = None;
                                    self.machine.on_end(now, id);
                                }
                            }
                        }
                        (None, Some(sleep)) => sleep.await,
                        (None, None) => {
                            // Nothing in flight and nothing scheduled cannot happen: the machine
                            // always has a request or a deadline. Yield to stay responsive.
                            futures_util::future::ready(()).await;
                        }
                    }
                }
            }
        }
    }
}

/// Helpers on streams of watcher events.
pub trait WatchStreamExt<K>: Stream<Item = Result<Event<K>, Error>> + Sized {
    /// Objects that were created, changed or listed (deletions are dropped).
    fn applied_objects(self) -> Pin<Box<dyn Stream<Item = Result<K, Error>> + Send>>
    where
        Self: Send + 'static,
        K: Send + 'static,
    {
        Box::pin(self.filter_map(|ev| async move {
            match ev {
                Ok(Event::Apply(k) | Event::InitApply(k)) => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// Objects that were created, changed, listed or deleted.
    fn touched_objects(self) -> Pin<Box<dyn Stream<Item = Result<K, Error>> + Send>>
    where
        Self: Send + 'static,
        K: Send + 'static,
    {
        Box::pin(self.filter_map(|ev| async move {
            match ev {
                Ok(Event::Apply(k) | Event::InitApply(k) | Event::Delete(k)) => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }
}

impl<K, S: Stream<Item = Result<Event<K>, Error>>> WatchStreamExt<K> for S {}
