//! Fault injection, reproducible from a seed: a [`FaultyServer`] wraps a [`FakeApiServer`] and,
//! by a schedule drawn from its seed, answers some requests with 500 or 429 (with
//! `Retry-After`), cuts responses off mid-body, drops watches mid-stream (sometimes mid-line),
//! compacts the history so that old resourceVersions and continue tokens expire, and delays
//! responses. The same seed and the same sequence of calls give the same faults.
//!
//! ```
//! use std::time::Instant;
//! use kube_proto_fake::faults::{FaultConfig, FaultyServer};
//! use kube_proto_fake::{FakeApiServer, FakeConfig};
//!
//! let t0 = Instant::now();
//! let server = FakeApiServer::new(FakeConfig::default(), t0);
//! let faulty = FaultyServer::new(server, FaultConfig::moderate(42));
//! // Drive `faulty.handle(now, &request)` and `faulty.poll_watch(id, now)` like the server;
//! // `faulty.stop_faults()` makes it well behaved from then on.
//! # drop(faulty);
//! ```

use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};

use super::{FakeApiServer, Reply, WatchId, WatchPoll, status_response};
use kube_proto::error::{Reason, Status, StatusDetails};

/// How often each fault happens, as probabilities per request (or per watch poll).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// The seed of the schedule.
    pub seed: u64,
    /// A request is answered with 500 Internal Server Error.
    pub server_error: f64,
    /// A request is answered with 429 Too Many Requests and `Retry-After`.
    pub too_many_requests: f64,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after_seconds: u32,
    /// A complete response is cut off part way through its body.
    pub cut_body: f64,
    /// An open watch is dropped when polled (part of the pending data may be delivered, cut
    /// anywhere, even inside a line).
    pub drop_watch: f64,
    /// The history is compacted before a request is handled: older resourceVersions and
    /// continue tokens expire (410).
    pub compact: f64,
    /// A response is delayed by up to this long (uniformly drawn).
    pub max_delay: Duration,
}

impl FaultConfig {
    /// No faults at all.
    pub fn none(seed: u64) -> Self {
        FaultConfig {
            seed,
            server_error: 0.0,
            too_many_requests: 0.0,
            retry_after_seconds: 1,
            cut_body: 0.0,
            drop_watch: 0.0,
            compact: 0.0,
            max_delay: Duration::ZERO,
        }
    }

    /// A mix of every fault, frequent enough to exercise recovery in a few hundred requests.
    pub fn moderate(seed: u64) -> Self {
        FaultConfig {
            seed,
            server_error: 0.05,
            too_many_requests: 0.05,
            retry_after_seconds: 2,
            cut_body: 0.03,
            drop_watch: 0.05,
            compact: 0.02,
            max_delay: Duration::from_millis(500),
        }
    }
}

/// What a fault kind was, for the record of injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A 500.
    ServerError,
    /// A 429 with `Retry-After`.
    TooManyRequests,
    /// A body cut off after this many bytes.
    CutBody(usize),
    /// A watch dropped.
    DroppedWatch(WatchId),
    /// The history compacted.
    Compacted,
}

/// A response as the faulty server delivers it.
#[derive(Debug)]
pub enum Delivery {
    /// The whole response.
    Complete(http::Response<Vec<u8>>),
    /// The connection broke after the head and these first bytes of the body.
    CutOff {
        /// The status and headers that were sent.
        head: http::Response<()>,
        /// The part of the body that arrived.
        partial: Vec<u8>,
    },
    /// A watch: poll it with [`FaultyServer::poll_watch`].
    Watch {
        /// The watch.
        id: WatchId,
        /// The head.
        head: http::Response<()>,
    },
    /// A switch to WebSocket (exec, attach, port-forward), passed on as the server made it.
    Upgrade {
        /// The `101`.
        head: http::Response<()>,
        /// The server's end of the connection.
        session: Box<crate::FakeSession>,
    },
}

/// What a watch delivers through the faulty server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultyPoll {
    /// Bytes; the stream goes on.
    Data(Vec<u8>),
    /// Nothing now; poll after the next write or at this instant.
    Pending(Option<Instant>),
    /// The server ended the stream cleanly after these bytes.
    Finished(Vec<u8>),
    /// The connection broke after these bytes (possibly mid-line): a transport error.
    Broken(Vec<u8>),
}

/// A [`FakeApiServer`] that injects faults by a seeded schedule.
#[derive(Debug)]
pub struct FaultyServer {
    /// The server behind the faults; use it directly for setup and to inspect state.
    pub server: FakeApiServer,
    config: FaultConfig,
    rng: kube_proto::rng::SplitMix64,
    active: bool,
    injected: Vec<Fault>,
}

impl FaultyServer {
    /// Wraps a server.
    pub fn new(server: FakeApiServer, config: FaultConfig) -> Self {
        let rng = kube_proto::rng::SplitMix64::new(config.seed ^ 0xD1B5_4A32_D192_ED03);
        FaultyServer { server, config, rng, active: true, injected: Vec::new() }
    }

    /// From now on, no more faults: the server behaves.
    pub fn stop_faults(&mut self) {
        self.active = false;
    }

    /// Whether faults are still being injected.
    pub fn faults_active(&self) -> bool {
        self.active
    }

    /// The faults injected so far, in order.
    pub fn injected(&self) -> &[Fault] {
        &self.injected
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn chance(&mut self, p: f64) -> bool {
        // Always draw, so that the schedule does not depend on which probabilities are zero.
        let r = self.rng.next_f64();
        self.active && r < p
    }

    /// Handles a request, maybe with a fault; returns the delay after which the answer arrives
    /// and the answer.
    pub fn handle(&mut self, now: Instant, req: &http::Request<Vec<u8>>) -> (Duration, Delivery) {
        let delay_draw = self.random();
        let delay = if self.active && !self.config.max_delay.is_zero() {
            let nanos = self.config.max_delay.as_nanos() as u64;
            Duration::from_nanos(delay_draw % nanos.max(1))
        } else {
            Duration::ZERO
        };
        if self.chance(self.config.compact) {
            self.server.compact();
            self.injected.push(Fault::Compacted);
        }
        if self.chance(self.config.server_error) {
            self.injected.push(Fault::ServerError);
            let s = Status::failure(500, Reason::InternalError, "Internal error occurred: injected fault");
            return (delay, Delivery::Complete(status_response(&s)));
        }
        if self.chance(self.config.too_many_requests) {
            self.injected.push(Fault::TooManyRequests);
            let mut s = Status::failure(429, Reason::TooManyRequests, "Too many requests, please try again later.");
            s.details = Some(StatusDetails {
                retry_after_seconds: Some(self.config.retry_after_seconds),
                ..StatusDetails::default()
            });
            let mut resp = status_response(&s);
            resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(self.config.retry_after_seconds));
            return (delay, Delivery::Complete(resp));
        }
        let cut = self.chance(self.config.cut_body);
        let cut_at = self.random();
        match self.server.handle(now, req) {
            Reply::Watch { id, head } => (delay, Delivery::Watch { id, head }),
            Reply::Upgrade { head, session } => (delay, Delivery::Upgrade { head, session }),
            Reply::Response(resp) if cut && !resp.body().is_empty() => {
                let n = (cut_at % resp.body().len() as u64) as usize;
                self.injected.push(Fault::CutBody(n));
                let (parts, mut body) = resp.into_parts();
                body.truncate(n);
                (delay, Delivery::CutOff { head: http::Response::from_parts(parts, ()), partial: body })
            }
            Reply::Response(resp) => (delay, Delivery::Complete(resp)),
        }
    }

    /// Polls a watch, maybe dropping it.
    pub fn poll_watch(&mut self, id: WatchId, now: Instant) -> FaultyPoll {
        let drop = self.chance(self.config.drop_watch);
        let cut_at = self.random();
        let poll = self.server.poll_watch(id, now);
        if drop {
            self.server.cancel_watch(id);
            self.injected.push(Fault::DroppedWatch(id));
            let mut data = match poll {
                WatchPoll::Data(d) | WatchPoll::Finished(d) => d,
                WatchPoll::Pending(_) => Vec::new(),
            };
            // Deliver a prefix of what was due: nothing, some lines, or part of a line.
            let n = if data.is_empty() { 0 } else { (cut_at % (data.len() as u64 + 1)) as usize };
            data.truncate(n);
            return FaultyPoll::Broken(data);
        }
        match poll {
            WatchPoll::Data(d) => FaultyPoll::Data(d),
            WatchPoll::Pending(at) => FaultyPoll::Pending(at),
            WatchPoll::Finished(d) => FaultyPoll::Finished(d),
        }
    }
}

/// The HTTP status of a delivery.
pub fn delivery_status(d: &Delivery) -> StatusCode {
    match d {
        Delivery::Complete(r) => r.status(),
        Delivery::CutOff { head, .. } | Delivery::Watch { head, .. } | Delivery::Upgrade { head, .. } => head.status(),
    }
}
