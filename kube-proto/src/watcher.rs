//! The watcher: a pure state machine that keeps a consistent view of a collection, owning
//! the resourceVersion and bookmark bookkeeping that raw watches get wrong.
//!
//! It lists (page by page, or as a streaming list), then watches from the list's
//! resourceVersion with bookmarks and a server-side timeout; re-watches from the last
//! resourceVersion seen when a watch ends; relists on 410 Gone; backs off exponentially with
//! jitter on errors (honouring `Retry-After`); and restarts a watch that has gone silent. It
//! does no IO and reads no clock: the caller sends the requests it asks for, feeds back what
//! comes, and passes `now` in.
//!
//! After every input, drain [`Watcher::poll`] until it returns [`Action::Wait`]:
//!
//! ```
//! use std::time::Instant;
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_proto::Request;
//! use kube_proto::watcher::{Action, Config, Event, Watcher};
//!
//! let mut w = Watcher::<Pod>::new(Request::namespaced::<Pod>("default"), Config::default()).unwrap();
//! let now = Instant::now();
//! let Action::Send(id, request) = w.poll(now) else { panic!() };
//! assert_eq!(request.uri(), "/api/v1/namespaces/default/pods?limit=500");
//! // The adapter sends `request`, then feeds back what comes, in order:
//! w.on_response(now, id, http::StatusCode::OK, &http::HeaderMap::new());
//! w.on_body(now, id, br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#);
//! w.on_end(now, id);
//! assert!(matches!(w.poll(now), Action::Emit(Event::Init)));
//! assert!(matches!(w.poll(now), Action::Emit(Event::InitDone)));
//! let Action::Send(_, watch) = w.poll(now) else { panic!() };
//! assert!(watch.uri().to_string().contains("watch=true"));
//! assert!(watch.uri().to_string().contains("resourceVersion=7"));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use crate::backoff::Backoff;
use crate::error::{RequestError, ResponseError};
use crate::params::{ListParams, Selectors, WatchParams};
use crate::request::Request;
use crate::resource::{Resource, ResourceExt};
use crate::response::{ListMeta, ObjectList, Response};
use crate::watch::{WatchDecodeError, WatchDecoder, WatchEvent};

/// How the initial state is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialListStrategy {
    /// LIST, page by page, then WATCH from the list's resourceVersion.
    #[default]
    ListWatch,
    /// One WATCH with `sendInitialEvents=true`: the current objects arrive as events, ending
    /// with the bookmark annotated `k8s.io/initial-events-end`; the same connection then goes on
    /// as a watch. Falls back to [`ListWatch`](Self::ListWatch) when the server rejects it.
    StreamingList,
}

/// Which data the initial list may be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListSemantic {
    /// The most recent data (a consistent read).
    #[default]
    MostRecent,
    /// Any data (`resourceVersion=0`): possibly stale, cheaper for the server. Relists after
    /// an error always ask for data no older than what was already seen, and the relist after
    /// a 410 Gone for the most recent data.
    Any,
}

/// Settings of a watcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `labelSelector` and `fieldSelector` of every list and watch.
    pub selectors: Selectors,
    /// The server-side timeout of each watch, in seconds.
    pub timeout: u32,
    /// How long past `timeout` a silent watch (or list) is given before it is treated as dead.
    pub idle_grace: Duration,
    /// The page size of the initial list (`None`: one page).
    pub page_size: Option<u32>,
    /// List then watch, or a streaming list.
    pub initial_list: InitialListStrategy,
    /// Most recent, or any, data for the initial list.
    pub list_semantic: ListSemantic,
    /// Ask for bookmarks (they make resuming cheap).
    pub bookmarks: bool,
    /// Ask for metadata only (`PartialObjectMetadata`): use with `K = PartialObjectMeta<_>`.
    pub metadata_only: bool,
    /// Backoff after errors.
    pub backoff: Backoff,
    /// The longest server `Retry-After` honoured; a server asking for longer is retried after
    /// this long (the watcher never gives up).
    pub max_retry_after: Duration,
    /// Seeds the jitter, so that runs are reproducible.
    pub seed: u64,
    /// The longest watch event (one line of the body) buffered, in bytes; a longer one is
    /// dropped without being buffered whole, reported as a decode error, and the watcher
    /// relists. Default [`DEFAULT_MAX_FRAME`](crate::watch::DEFAULT_MAX_FRAME), 16 MiB, as
    /// client-go.
    pub max_frame: usize,
    /// Decode objects with exact capacities (see [`compact`](crate::compact)): about a quarter
    /// less memory for each object kept, for some 10–15% more decoding work. For watchers of
    /// custom resources or dynamic objects that feed a store. Off by default. The built-in kinds
    /// get exact capacities without it (they are read by the [direct
    /// decoder](crate::direct_json)), so for them it changes nothing.
    pub compact: bool,
    /// Ask for protobuf (`Accept: application/vnd.kubernetes.protobuf, application/json`) and read
    /// whichever format the server answers in. For built-in kinds (custom resources come back as
    /// JSON); needs the `protobuf` feature, without which JSON is asked for. Off by default.
    pub protobuf: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            selectors: Selectors::default(),
            timeout: 290,
            idle_grace: Duration::from_secs(30),
            page_size: Some(500),
            initial_list: InitialListStrategy::ListWatch,
            list_semantic: ListSemantic::MostRecent,
            bookmarks: true,
            metadata_only: false,
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(60),
            seed: 0x5EED,
            max_frame: crate::watch::DEFAULT_MAX_FRAME,
            compact: false,
            protobuf: false,
        }
    }
}

impl Config {
    /// Asks for protobuf (see [`Config::protobuf`]).
    #[must_use]
    pub fn protobuf(mut self) -> Self {
        self.protobuf = true;
        self
    }

    /// Decodes objects with exact capacities (see [`Config::compact`]).
    #[must_use]
    pub fn compact(mut self) -> Self {
        self.compact = true;
        self
    }

    /// Sets the longest watch event buffered, in bytes (see [`Config::max_frame`]).
    #[must_use]
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }
    /// Only objects whose labels match.
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.selectors.label_selector = Some(selector.to_owned());
        self
    }
    /// Only objects whose fields match.
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.selectors.field_selector = Some(selector.to_owned());
        self
    }
    /// Sets the server-side watch timeout.
    #[must_use]
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = seconds;
        self
    }
    /// Sets the page size of the initial list.
    #[must_use]
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }
    /// Uses a streaming list for the initial state.
    #[must_use]
    pub fn streaming_lists(mut self) -> Self {
        self.initial_list = InitialListStrategy::StreamingList;
        self
    }
    /// Accepts possibly stale data for the first list (`resourceVersion=0`).
    #[must_use]
    pub fn any_semantic(mut self) -> Self {
        self.list_semantic = ListSemantic::Any;
        self
    }
    /// Asks for metadata only.
    #[must_use]
    pub fn metadata_only(mut self) -> Self {
        self.metadata_only = true;
        self
    }
    /// Sets the jitter seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What the watcher tells its user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// A (re)list starts: what follows up to [`InitDone`](Self::InitDone) is the complete state.
    Init,
    /// An object of the complete state.
    InitApply(K),
    /// The complete state has been sent: objects not in it are gone.
    InitDone,
    /// An object was created or changed.
    Apply(K),
    /// An object was deleted.
    Delete(K),
}

#[derive(Clone, Copy)]
enum EvKind {
    Modified,
    Other,
}

/// Identifies one request the watcher asked for, so that input for an abandoned request is
/// ignored.
pub type RequestId = u64;

/// Why the watcher waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Backing off after an error.
    Backoff,
    /// Waiting for the response to the request in flight; the deadline is when it is given up.
    Response,
}

/// An error the watcher observed. It keeps going after every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatcherError {
    /// The server answered with an error.
    #[error("{0}")]
    Response(ResponseError),
    /// A watch event did not decode; the watcher relists.
    #[error("{0}")]
    Decode(WatchDecodeError),
    /// The transport failed (connection refused, reset, TLS ...).
    #[error("transport error: {0}")]
    Transport(String),
    /// A request went silent for too long and was abandoned.
    #[error("no data for {0:?}: the request was abandoned")]
    Silent(Duration),
    /// The server sent something a watch should not (such as MODIFIED during a streaming list).
    #[error("unexpected watch event: {0}")]
    Unexpected(String),
}

/// What the caller does next.
#[derive(Debug)]
pub enum Action<K> {
    /// Send this request and feed its response back under this id.
    Send(RequestId, http::Request<Vec<u8>>),
    /// Stop reading the response to this request: the watcher gave up on it.
    Cancel(RequestId),
    /// An event for the user.
    Emit(Event<K>),
    /// An error for the user to see (log, count); the watcher goes on by itself.
    Error(WatcherError),
    /// Nothing to do until input arrives or `until` (if any) passes; then poll again.
    Wait {
        /// When to poll again even if nothing arrives: always a deadline (the watcher always has
        /// either a backoff to wait out or a request in flight that it gives up on).
        until: Instant,
        /// Why.
        reason: WaitReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    List { continue_token: Option<String> },
    Stream,
    Watch,
}

struct InFlight<K> {
    id: RequestId,
    head: Option<(StatusCode, Option<u32>)>,
    /// A list's body, or an error response's body.
    body: Vec<u8>,
    decoder: WatchDecoder<K>,
    deadline: Instant,
    started: Instant,
    events: u64,
    /// How the stream ended, acted on once the lines already received have been delivered.
    closing: Option<Closing>,
}

/// The end of a watch stream, waiting for its buffered events to be delivered first.
enum Closing {
    Ended,
    Failed(String),
}

enum State<K> {
    Idle { next: Next, not_before: Option<Instant> },
    Listing { req: InFlight<K>, continue_token: Option<String> },
    Streaming { req: InFlight<K> },
    Watching { req: InFlight<K> },
}

/// What [`Watcher::poll`] hands out next, in order.
///
/// A list page's items stay in their `Vec` and go out one by one, rather than being moved into
/// the queue: the queue would keep the capacity a page needed (a few KiB per object) for as long
/// as the watcher lives. After a burst (many events in one chunk) the queue gives back what it
/// grew by, so that what the watcher holds does not depend on what it has seen.
struct Outbox<K> {
    queue: VecDeque<Queued<K>>,
}

// An action is usually an object, far larger than the iterator: boxing it would only add an
// allocation per action.
#[allow(clippy::large_enum_variant)]
enum Queued<K> {
    Action(Action<K>),
    Items(std::vec::IntoIter<K>),
}

impl<K> Outbox<K> {
    /// Capacity kept when the queue empties: about 16 KiB, and at least 4 entries.
    const KEEP: usize = {
        let n = 16 * 1024 / std::mem::size_of::<Queued<K>>();
        if n < 4 { 4 } else { n }
    };

    fn new() -> Self {
        Outbox { queue: VecDeque::new() }
    }

    fn push_back(&mut self, action: Action<K>) {
        self.queue.push_back(Queued::Action(action));
    }

    /// Queues each item as an `Emit(InitApply)`.
    fn push_items(&mut self, items: Vec<K>) {
        if !items.is_empty() {
            self.queue.push_back(Queued::Items(items.into_iter()));
        }
    }

    fn pop_front(&mut self) -> Option<Action<K>> {
        let action = match self.queue.front_mut()? {
            Queued::Items(items) => {
                let item = items.next().expect("an Items entry is never empty");
                if !items.as_slice().is_empty() {
                    return Some(Action::Emit(Event::InitApply(item)));
                }
                // The page's last item: free its buffer now.
                self.queue.pop_front();
                Action::Emit(Event::InitApply(item))
            }
            Queued::Action(_) => match self.queue.pop_front() {
                Some(Queued::Action(action)) => action,
                _ => unreachable!("the front entry is an action"),
            },
        };
        if self.queue.is_empty() && self.queue.capacity() > Self::KEEP {
            self.queue.shrink_to(Self::KEEP);
        }
        Some(action)
    }
}

/// A list page as [`Response::list`] reads it, without the buffering that `ObjectList`'s
/// flattened `apiVersion`/`kind` cost: serde first reads the whole body (every item) into an
/// intermediate tree, several times the body's size, then the items out of it. A successful JSON
/// object is read straight into metadata and items; anything else (an error status, a body that
/// does not decode) goes through [`Response::list`], so that the outcome and errors are the same.
fn read_list<K: DeserializeOwned + 'static>(
    resp: &Response<'_>,
    compact: bool,
) -> Result<ObjectList<K>, ResponseError> {
    #[derive(Deserialize)]
    #[serde(bound(deserialize = "K: Deserialize<'de>"))]
    struct Page<K> {
        #[serde(default)]
        metadata: ListMeta,
        #[serde(default, deserialize_with = "crate::response::null_as_empty")]
        items: Vec<K>,
    }
    // The items of the built-in kinds, read directly (see `direct_json`).
    if resp.status.is_success()
        && let Ok(text) = std::str::from_utf8(resp.body)
        && let Some(list) = crate::direct_json::list::<K>(text)
    {
        return Ok(ObjectList { types: None, metadata: list.metadata, items: list.items });
    }
    // `ObjectList` reads only a JSON object (a struct would also accept an array).
    let object = resp.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if resp.status.is_success()
        && object
        && let Ok(text) = std::str::from_utf8(resp.body)
        && let Ok(page) =
            if compact { crate::compact::from_str::<Page<K>>(text) } else { serde_json::from_str::<Page<K>>(text) }
    {
        return Ok(ObjectList { types: None, metadata: page.metadata, items: page.items });
    }
    if compact { resp.list_compact::<K>() } else { resp.list::<K>() }
}

/// The watcher state machine. See the [module documentation](self).
pub struct Watcher<K> {
    request: Request,
    config: Config,
    state: State<K>,
    out: Outbox<K>,
    /// The newest resourceVersion seen (list, event or bookmark).
    resource_version: Option<String>,
    /// The server said the data seen is gone (410): the next (streaming) list is a consistent
    /// read, even with [`ListSemantic::Any`] (whose `resourceVersion=0` could serve data older
    /// than what was already seen).
    expired: bool,
    /// 410 relists since the last watch event: repeated ones back off, so heavy churn cannot
    /// make the watcher spin between lists.
    gone_streak: u32,
    /// Whether an Init of the current (re)list has been emitted and not yet completed.
    init_open: bool,
    next_id: RequestId,
    failures: u32,
    rng: crate::rng::SplitMix64,
    streaming: bool,
    last_backoff: Option<Duration>,
}

impl<K> fmt::Debug for Watcher<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Idle { next, .. } => format!("Idle({next:?})"),
            State::Listing { req, .. } => format!("Listing(#{})", req.id),
            State::Streaming { req } => format!("Streaming(#{})", req.id),
            State::Watching { req } => format!("Watching(#{})", req.id),
        };
        f.debug_struct("Watcher")
            .field("url", &self.request.url_path())
            .field("state", &state)
            .field("resource_version", &self.resource_version)
            .field("failures", &self.failures)
            .finish()
    }
}

impl<K> Watcher<K>
where
    K: Resource + DeserializeOwned + 'static,
{
    /// A watcher of the collection `request` addresses. Fails if the configuration would give
    /// requests the API server rejects (an invalid selector, say).
    pub fn new(request: Request, config: Config) -> Result<Self, RequestError> {
        let mut w = Watcher {
            streaming: config.initial_list == InitialListStrategy::StreamingList,
            rng: crate::rng::SplitMix64::new(config.seed ^ 0xA076_1D64_78BD_642F),
            request,
            config,
            state: State::Idle { next: Next::List { continue_token: None }, not_before: None },
            out: Outbox::new(),
            resource_version: None,
            expired: false,
            gone_streak: 0,
            init_open: false,
            next_id: 1,
            failures: 0,
            last_backoff: None,
        };
        // Build both kinds of request once, so that bad settings fail here and not later.
        w.build(&Next::List { continue_token: None })?;
        w.build(&Next::Watch)?;
        if w.streaming {
            w.build(&Next::Stream)?;
            w.state = State::Idle { next: Next::Stream, not_before: None };
        }
        Ok(w)
    }

    /// The newest resourceVersion the watcher has seen.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// The delay of the latest backoff (for tests and metrics).
    pub fn last_backoff(&self) -> Option<Duration> {
        self.last_backoff
    }

    /// The id of the request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        match &self.state {
            State::Idle { .. } => None,
            State::Listing { req, .. } | State::Streaming { req } | State::Watching { req } => Some(req.id),
        }
    }

    /// Hands the watcher an object nobody holds any more, typically the one a store has just
    /// replaced or removed: the next event a watch stream brings is decoded over it, reusing its
    /// allocations (see [`WatchDecoder::recycle`]). The events are the same as without it. Without
    /// a watch stream open, the object is dropped.
    pub fn recycle(&mut self, object: K) {
        if let State::Streaming { req } | State::Watching { req } = &mut self.state {
            req.decoder.recycle(object);
        }
    }

    /// Whether [`recycle`](Self::recycle) would be of use now: a watch stream is open, its
    /// decoder can decode over an object ([`WatchDecoder::wants_spare`]: JSON events of a
    /// built-in kind) and holds none yet.
    pub fn wants_spare(&self) -> bool {
        matches!(&self.state, State::Streaming { req } | State::Watching { req } if req.decoder.wants_spare())
    }

    /// The next thing to do. Call until it returns [`Action::Wait`], after every input.
    pub fn poll(&mut self, now: Instant) -> Action<K> {
        loop {
            if let Some(a) = self.out.pop_front() {
                return a;
            }
            // Watch events are decoded one per step, as the caller asks for them: each object is
            // handed over (and usually dropped) before the next one is built, which keeps memory
            // flat and the allocator fast.
            let closing = match &mut self.state {
                State::Streaming { req } | State::Watching { req } => match req.decoder.next_event() {
                    // The queue is empty here: the action goes first.
                    Some(ev) => match self.handle_event(now, ev) {
                        Some(action) => return action,
                        None => continue,
                    },
                    None => req.closing.take(),
                },
                _ => None,
            };
            match closing {
                Some(Closing::Ended) => self.finish_stream(now),
                Some(Closing::Failed(error)) => self.transport_failed(now, error),
                None => return self.poll_state(now),
            }
        }
    }

    fn poll_state(&mut self, now: Instant) -> Action<K> {
        match &mut self.state {
            State::Idle { next, not_before } => {
                if let Some(t) = *not_before
                    && now < t
                {
                    return Action::Wait { until: t, reason: WaitReason::Backoff };
                }
                let next = next.clone();
                self.send(now, next)
            }
            State::Listing { req, .. } | State::Streaming { req } | State::Watching { req } => {
                if now < req.deadline {
                    return Action::Wait { until: req.deadline, reason: WaitReason::Response };
                }
                let (id, silent) = (req.id, now.saturating_duration_since(req.started));
                let next = self.resume_point();
                self.out.push_back(Action::Cancel(id));
                self.out.push_back(Action::Error(WatcherError::Silent(silent)));
                self.fail(now, next, None);
                self.out.pop_front().expect("a Cancel was just queued")
            }
        }
    }

    /// The response head of request `id` arrived.
    pub fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, headers: &HeaderMap) {
        let idle = self.idle();
        if let Some(req) = self.current(id) {
            req.decoder.use_content_type(headers);
            req.head = Some((status, crate::response::retry_after(headers)));
            req.deadline = now + idle;
        }
    }

    /// Body bytes of request `id` arrived.
    pub fn on_body(&mut self, now: Instant, id: RequestId, chunk: &[u8]) {
        let idle = self.idle();
        let is_list = matches!(self.state, State::Listing { .. });
        let Some(req) = self.current(id) else { return };
        req.deadline = now + idle;
        let streaming_body = matches!(req.head, Some((StatusCode::OK, _)));
        if is_list || !streaming_body {
            req.body.extend_from_slice(chunk);
            return;
        }
        req.decoder.push(chunk);
    }

    /// The body of request `id` ended cleanly.
    pub fn on_end(&mut self, now: Instant, id: RequestId) {
        let Some(req) = self.current(id) else { return };
        if matches!(req.head, Some((StatusCode::OK, _))) && req.closing.is_none() && !self.is_listing() {
            // A stream: its buffered events are delivered first (see `poll`).
            if let Some(req) = self.current(id) {
                req.closing = Some(Closing::Ended);
            }
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Idle { next: Next::Watch, not_before: None });
        match state {
            State::Idle { .. } => {}
            State::Listing { req, continue_token } => self.list_done(now, req, continue_token),
            State::Streaming { req } => self.stream_end(now, req, true),
            State::Watching { req } => self.stream_end(now, req, false),
        }
    }

    /// Request `id` failed in transport (refused, reset, TLS, cut off mid-body).
    pub fn on_transport_error(&mut self, now: Instant, id: RequestId, error: impl Into<String>) {
        let listing = self.is_listing();
        let Some(req) = self.current(id) else { return };
        if matches!(req.head, Some((StatusCode::OK, _))) && req.closing.is_none() && !listing {
            // The complete lines that did arrive are still events: deliver them, then fail.
            req.closing = Some(Closing::Failed(error.into()));
            return;
        }
        self.transport_failed(now, error.into());
    }

    fn transport_failed(&mut self, now: Instant, error: String) {
        let next = self.resume_point();
        self.out.push_back(Action::Error(WatcherError::Transport(error)));
        self.fail(now, next, None);
    }

    fn is_listing(&self) -> bool {
        matches!(self.state, State::Listing { .. })
    }

    /// A stream's end, once its buffered events have been delivered.
    fn finish_stream(&mut self, now: Instant) {
        let state = std::mem::replace(&mut self.state, State::Idle { next: Next::Watch, not_before: None });
        match state {
            State::Streaming { req } => self.stream_end(now, req, true),
            State::Watching { req } => self.stream_end(now, req, false),
            other => self.state = other,
        }
    }

    // ---- internals ----

    fn idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.timeout)) + self.config.idle_grace
    }

    fn current(&mut self, id: RequestId) -> Option<&mut InFlight<K>> {
        match &mut self.state {
            State::Listing { req, .. } | State::Streaming { req } | State::Watching { req } if req.id == id => {
                Some(req)
            }
            _ => None,
        }
    }

    /// The end of a watch's (or streaming list's) body.
    fn stream_end(&mut self, now: Instant, mut req: InFlight<K>, streaming: bool) {
        match req.head {
            Some((StatusCode::OK, _)) => {
                let tail = req.decoder.finish();
                self.state = if streaming { State::Streaming { req } } else { State::Watching { req } };
                if let Some(action) = tail.and_then(|ev| self.handle_event(now, ev)) {
                    self.out.push_back(action);
                }
                self.watch_ended(now);
            }
            head => self.watch_refused(now, head, &req.body, streaming),
        }
    }

    /// Where to resume after the request in flight failed.
    fn resume_point(&self) -> Next {
        match &self.state {
            State::Idle { next, .. } => next.clone(),
            State::Listing { continue_token, .. } => Next::List { continue_token: continue_token.clone() },
            State::Streaming { .. } => Next::Stream,
            State::Watching { .. } => Next::Watch,
        }
    }

    fn random(&mut self) -> f64 {
        self.rng.next_f64()
    }

    /// Records a failure and schedules `next` after a backoff (at least `retry_after`).
    fn fail(&mut self, now: Instant, next: Next, retry_after: Option<u32>) {
        self.failures = self.failures.saturating_add(1);
        let r = self.random();
        let mut delay = self.config.backoff.delay(self.failures, r);
        if let Some(secs) = retry_after {
            // A server's Retry-After is honoured up to a bound, as the retry policy bounds it:
            // 4,294,967,295 seconds must not stall the watcher for 136 years.
            delay = delay.max(Duration::from_secs(u64::from(secs)).min(self.config.max_retry_after));
        }
        self.last_backoff = Some(delay);
        self.state = State::Idle { next, not_before: Some(now + delay) };
    }

    fn succeed(&mut self) {
        self.failures = 0;
    }

    fn build(&self, next: &Next) -> Result<http::Request<Vec<u8>>, RequestError> {
        #[allow(unused_mut)]
        let mut req = self.build_json(next)?;
        #[cfg(feature = "protobuf")]
        if self.config.protobuf {
            crate::protobuf::negotiate(&mut req);
        }
        Ok(req)
    }

    fn build_json(&self, next: &Next) -> Result<http::Request<Vec<u8>>, RequestError> {
        let c = &self.config;
        match next {
            Next::List { continue_token } => {
                let mut lp = ListParams {
                    selectors: c.selectors.clone(),
                    limit: c.page_size,
                    continue_token: continue_token.clone(),
                    ..ListParams::default()
                };
                if continue_token.is_none() {
                    match (&self.resource_version, c.list_semantic) {
                        // A relist asks for data no older than what was seen.
                        (Some(rv), _) => lp = lp.not_older_than(rv),
                        (None, ListSemantic::Any) if !self.expired => lp = lp.match_any(),
                        (None, _) => {}
                    }
                }
                if c.metadata_only { self.request.list_metadata(&lp) } else { self.request.list(&lp) }
            }
            Next::Stream | Next::Watch => {
                let streaming = *next == Next::Stream;
                let wp = WatchParams {
                    selectors: c.selectors.clone(),
                    timeout: Some(c.timeout),
                    // A streaming list needs the bookmark that ends its initial events.
                    bookmarks: c.bookmarks || streaming,
                    send_initial_events: streaming,
                };
                let rv = match (&self.resource_version, streaming, c.list_semantic) {
                    (Some(rv), _, _) => rv.as_str(),
                    (None, true, ListSemantic::Any) if !self.expired => "0",
                    (None, _, _) => "",
                };
                if c.metadata_only { self.request.watch_metadata(&wp, rv) } else { self.request.watch(&wp, rv) }
            }
        }
    }

    fn send(&mut self, now: Instant, next: Next) -> Action<K> {
        let next = match next {
            // A watch needs a resourceVersion to start from; without one, list again.
            Next::Watch if self.resource_version.is_none() => Next::List { continue_token: None },
            n => n,
        };
        let request = match self.build(&next) {
            Ok(r) => r,
            Err(e) => {
                // Settings were checked in `new`; a resourceVersion from the server that makes
                // an invalid request is the only way here. Start over from a fresh list.
                self.forget_resource_version();
                self.fail(now, Next::List { continue_token: None }, None);
                return Action::Error(WatcherError::Unexpected(format!("could not build the next request: {e}")));
            }
        };
        if matches!(next, Next::Stream | Next::List { continue_token: None }) {
            // Starting the initial state over: the user gets a fresh Init, so that a store
            // drops what a broken attempt had buffered.
            self.init_open = false;
        }
        let id = self.next_id;
        self.next_id += 1;
        let req = InFlight {
            id,
            head: None,
            body: Vec::new(),
            decoder: WatchDecoder::with_max_frame(self.config.max_frame).compact(self.config.compact),
            deadline: now + self.idle(),
            started: now,
            events: 0,
            closing: None,
        };
        self.state = match next {
            Next::List { continue_token } => State::Listing { req, continue_token },
            Next::Stream => State::Streaming { req },
            Next::Watch => State::Watching { req },
        };
        Action::Send(id, request)
    }

    fn list_done(&mut self, now: Instant, req: InFlight<K>, continue_token: Option<String>) {
        let (status, retry_after) = req.head.unwrap_or((StatusCode::OK, None));
        let headers = HeaderMap::new();
        let resp = Response::new(status, &headers, &req.body);
        match read_list::<K>(&resp, self.config.compact) {
            Ok(list) => {
                if !self.init_open {
                    self.init_open = true;
                    self.out.push_back(Action::Emit(Event::Init));
                }
                let next_token = list.continue_token().map(str::to_owned);
                let rv = list.metadata.resource_version.clone();
                self.out.push_items(list.items);
                if let Some(token) = next_token {
                    self.state = State::Idle { next: Next::List { continue_token: Some(token) }, not_before: None };
                    return;
                }
                self.init_open = false;
                self.out.push_back(Action::Emit(Event::InitDone));
                match rv.filter(|r| !r.is_empty()) {
                    Some(rv) => {
                        self.resource_version = Some(rv);
                        self.succeed();
                        self.state = State::Idle { next: Next::Watch, not_before: None };
                    }
                    None => {
                        // Nothing to watch from: say so, and list again after a backoff.
                        self.out.push_back(Action::Error(WatcherError::Unexpected(
                            "the list has no metadata.resourceVersion to watch from".into(),
                        )));
                        self.fail(now, Next::List { continue_token: None }, None);
                    }
                }
            }
            Err(e) if e.is_gone() => {
                // An expired continue token, or a resourceVersion that is too old: list afresh.
                self.relist_after_gone(now, Next::List { continue_token: None });
            }
            Err(e) => {
                // `e` was read without the headers: the longer of details.retryAfterSeconds
                // and the Retry-After header counts.
                let retry = e.retry_after().max(retry_after);
                self.out.push_back(Action::Error(WatcherError::Response(e)));
                self.fail(now, Next::List { continue_token }, retry);
            }
        }
    }

    /// A watch (or streaming list) answered with an error status instead of a stream.
    fn watch_refused(&mut self, now: Instant, head: Option<(StatusCode, Option<u32>)>, body: &[u8], streaming: bool) {
        let (status, retry_after) = head.unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, None));
        let err = Response::new(status, &HeaderMap::new(), body).error();
        if err.is_gone() {
            // A streaming watcher relists by streaming list, whether the stream or a later
            // re-watch was refused.
            let next = if self.streaming { Next::Stream } else { Next::List { continue_token: None } };
            self.relist_after_gone(now, next);
            return;
        }
        if streaming && matches!(status.as_u16(), 400 | 422) {
            // The server does not do streaming lists: list and watch instead, from now on.
            self.streaming = false;
            self.state = State::Idle { next: Next::List { continue_token: None }, not_before: None };
            return;
        }
        let retry = err.retry_after().max(retry_after);
        self.out.push_back(Action::Error(WatcherError::Response(err)));
        let next = if streaming { Next::Stream } else { Next::Watch };
        self.fail(now, next, retry);
    }

    /// A watch's stream ended cleanly.
    fn watch_ended(&mut self, now: Instant) {
        let (events, started, streaming) = match &self.state {
            State::Streaming { req } => (req.events, req.started, true),
            State::Watching { req } => (req.events, req.started, false),
            _ => return, // an event handler already moved on (410, decode error)
        };
        if streaming && events > 0 {
            // The stream ended before the bookmark that closes the initial events: this server
            // ignores sendInitialEvents (older than 1.27). List and watch from now on.
            self.streaming = false;
            self.state = State::Idle { next: Next::List { continue_token: None }, not_before: None };
            return;
        }
        let next = if streaming { Next::Stream } else { Next::Watch };
        // A watch that ends at once with nothing to say is a failure in disguise: back off
        // rather than spin.
        if events == 0 && now.saturating_duration_since(started) < Duration::from_secs(1) {
            self.fail(now, next, None);
        } else {
            self.state = State::Idle { next, not_before: None };
        }
    }

    /// Acts on one decoded line of a stream. An object event, the usual case, comes back as the
    /// action itself rather than through the queue (a large value moved twice less per event),
    /// for the caller to hand out after whatever is queued; anything else is queued.
    fn handle_event(&mut self, now: Instant, ev: Result<WatchEvent<K>, WatchDecodeError>) -> Option<Action<K>> {
        let (id, streaming) = match &mut self.state {
            State::Streaming { req } => {
                req.events += 1;
                (req.id, true)
            }
            State::Watching { req } => {
                req.events += 1;
                (req.id, false)
            }
            _ => return None,
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                // Skipping the line would lose an event: report it and relist.
                self.out.push_back(Action::Cancel(id));
                self.out.push_back(Action::Error(WatcherError::Decode(e)));
                self.init_open = false;
                let next = if self.streaming { Next::Stream } else { Next::List { continue_token: None } };
                self.fail(now, next, None);
                return None;
            }
        };
        if !matches!(ev, WatchEvent::Error(_)) {
            self.succeed();
        }
        let ev_kind = if matches!(ev, WatchEvent::Modified(_)) { EvKind::Modified } else { EvKind::Other };
        match ev {
            WatchEvent::Added(obj) if streaming => {
                // The initial objects come in key order, not resourceVersion order: they are no
                // resume point. Only the bookmark that ends them is.
                if !self.init_open {
                    self.init_open = true;
                    self.out.push_back(Action::Emit(Event::Init));
                }
                self.out.push_back(Action::Emit(Event::InitApply(obj)));
            }
            WatchEvent::Modified(obj) | WatchEvent::Deleted(obj) if streaming => {
                let kind = if matches!(ev_kind, EvKind::Modified) { "MODIFIED" } else { "DELETED" };
                self.out.push_back(Action::Cancel(id));
                self.out.push_back(Action::Error(WatcherError::Unexpected(format!(
                    "{kind} {} during the initial events of a streaming list",
                    obj.name_any()
                ))));
                self.init_open = false;
                // Only a server that ignores sendInitialEvents sends this: list and watch instead.
                self.streaming = false;
                self.fail(now, Next::List { continue_token: None }, None);
            }
            WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                self.gone_streak = 0;
                self.note_rv(obj.resource_version());
                return Some(Action::Emit(Event::Apply(obj)));
            }
            WatchEvent::Deleted(obj) => {
                self.gone_streak = 0;
                self.note_rv(obj.resource_version());
                return Some(Action::Emit(Event::Delete(obj)));
            }
            WatchEvent::Bookmark(b) => {
                if !streaming {
                    self.gone_streak = 0;
                }
                self.note_rv(Some(&b.metadata.resource_version));
                if streaming && b.is_initial_events_end() {
                    if !self.init_open {
                        self.out.push_back(Action::Emit(Event::Init));
                    }
                    self.init_open = false;
                    self.out.push_back(Action::Emit(Event::InitDone));
                    // The same connection goes on as a plain watch.
                    let state = std::mem::replace(&mut self.state, State::Idle { next: Next::Watch, not_before: None });
                    if let State::Streaming { req } = state {
                        self.state = State::Watching { req };
                    }
                }
            }
            WatchEvent::Error(status) => {
                self.out.push_back(Action::Cancel(id));
                if status.is_gone() {
                    // Too old: start over with a fresh (streaming) list; the store swaps.
                    let next = if self.streaming { Next::Stream } else { Next::List { continue_token: None } };
                    self.relist_after_gone(now, next);
                } else {
                    let err =
                        ResponseError::Api(Box::new(crate::ApiError { http_status: 0, status, retry_after: None }));
                    let retry = err.api_status().and_then(|s| s.details.as_ref()).and_then(|d| d.retry_after_seconds);
                    self.out.push_back(Action::Error(WatcherError::Response(err)));
                    let next = if streaming { Next::Stream } else { Next::Watch };
                    self.fail(now, next, retry);
                }
            }
        }
        None
    }

    /// After a 410: start over with `next`. The first relist is immediate; one that follows
    /// another with no watch event in between backs off, growing with the streak.
    fn relist_after_gone(&mut self, now: Instant, next: Next) {
        self.forget_resource_version();
        self.init_open = false;
        self.gone_streak = self.gone_streak.saturating_add(1);
        if self.gone_streak > 1 {
            let r = self.random();
            let delay = self.config.backoff.delay(self.gone_streak - 1, r);
            self.last_backoff = Some(delay);
            self.state = State::Idle { next, not_before: Some(now + delay) };
        } else {
            self.state = State::Idle { next, not_before: None };
        }
    }

    /// The resourceVersion seen is too old to resume from: the next list is a consistent read.
    fn forget_resource_version(&mut self) {
        self.resource_version = None;
        self.expired = true;
    }

    fn note_rv(&mut self, rv: Option<&str>) {
        if let Some(rv) = rv.filter(|r| !r.is_empty()) {
            // Into the previous one's buffer: no allocation per event.
            match &mut self.resource_version {
                Some(current) => {
                    current.clear();
                    current.push_str(rv);
                }
                None => self.resource_version = Some(rv.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(800));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(1600));
        assert_eq!(b.delay(30, 0.0), Duration::from_secs(30));
        let d = b.delay(3, 0.999);
        assert!(d >= Duration::from_secs_f64(3.2 * 0.8) && d <= Duration::from_secs_f64(3.2), "{d:?}");
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs_f64(30.0 * 0.9));
    }
}
