//! Leader election on a `coordination.k8s.io/v1` Lease, as a pure state machine.
//!
//! An [`Elector`] acquires a Lease by writing its identity into `spec.holderIdentity`, renews it
//! while it leads, gives it back on shutdown (clearing the holder, so that a successor need not
//! wait for it to expire), and watches who else holds it. Every write is a `PUT` carrying the
//! `resourceVersion` last read (or a `POST` when there is no Lease yet), so two candidates can
//! never both succeed from the same state: the API server's optimistic concurrency is what makes
//! the leader unique.
//!
//! # Time, and why clocks are never compared
//!
//! The machine never reads `spec.renewTime`, and never compares its own clock with anyone
//! else's. Expiry is judged as client-go judges it: a candidate notes the *local* instant at
//! which it saw the Lease change (its holder or `resourceVersion`), and considers the holder gone
//! when the Lease has not changed for `leaseDurationSeconds` of the candidate's own clock since.
//! The holder, for its part, stops considering itself leader `renew_deadline` after it *sent*
//! its last successful renewal, measured on its own clock, and `renew_deadline` is shorter than
//! `lease_duration`.
//!
//! Why that is safe. Take a holder H whose last successful renewal was sent at true time `s`
//! (its write landed at some `w ≥ s`). A candidate C can take over only by a write conditional
//! on a `resourceVersion` it read after `w` (any earlier version makes the write fail), which it
//! noted at a true time `o ≥ w ≥ s`; it waits `lease_duration` of its own clock from there. H
//! stops at `s + renew_deadline` of *its* clock. If each clock's rate is within a factor
//! `1 ± ρ` of true time, H stops by true time `s + R/(1-ρ)` and C starts no sooner than
//! `s + L/(1+ρ)`, so one leader at a time needs `R/(1-ρ) < L/(1+ρ)`, that is
//!
//! > **ρ < (L − R) / (L + R)**
//!
//! ([`LeaseConfig::max_clock_rate_error`]; with the defaults L = 15 s and R = 10 s, 20%). Only
//! the *rate* of the clocks matters, not their offsets: a machine whose clock is set an hour
//! wrong is as safe as any. A process paused (a GC pause, a stopped VM) past its deadline is
//! safe too, as long as it checks [`Elector::is_leading`] with a fresh `now` before acting.
//!
//! # Driving it
//!
//! After every input, drain [`Elector::poll`] until it returns [`Action::Wait`] (or
//! [`Action::Stopped`]), as for every machine of this crate:
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use kube_proto::lease::{Action, Elector, LeaseConfig, LeaseEvent};
//!
//! let config = LeaseConfig::new("default", "my-controller", "replica-a");
//! let mut elector = Elector::new(config).unwrap();
//! let (now, wall) = (Instant::now(), SystemTime::now());
//! let Action::Send(id, get) = elector.poll(now, wall) else { panic!() };
//! assert_eq!(get.uri(), "/apis/coordination.k8s.io/v1/namespaces/default/leases/my-controller");
//! // No Lease yet: the elector creates one naming itself.
//! let not_found = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
//! elector.on_response(now, id, http::StatusCode::NOT_FOUND, &http::HeaderMap::new(), not_found);
//! assert!(matches!(elector.poll(now, wall), Action::Emit(LeaseEvent::Holder(None))));
//! let Action::Send(id, create) = elector.poll(now, wall) else { panic!() };
//! assert_eq!(create.method(), "POST");
//! let created = br#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
//!     "metadata":{"name":"my-controller","namespace":"default","resourceVersion":"5"},
//!     "spec":{"holderIdentity":"replica-a","leaseDurationSeconds":15}}"#;
//! elector.on_response(now, id, http::StatusCode::CREATED, &http::HeaderMap::new(), created);
//! assert!(matches!(elector.poll(now, wall), Action::Emit(LeaseEvent::Holder(Some(_)))));
//! assert!(matches!(elector.poll(now, wall), Action::Emit(LeaseEvent::Acquired)));
//! assert!(elector.is_leading(now + Duration::from_secs(9)));
//! assert!(!elector.is_leading(now + Duration::from_secs(10))); // renew_deadline, unless renewed
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use crate::error::{Reason, RequestError, ResponseError};
use crate::params::{GetParams, PostParams};
use crate::request::Request;
use crate::response::Response;

/// Identifies one request the machine asked for, so that input for an abandoned one is ignored.
pub type RequestId = u64;

/// Settings of one Lease's election.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// Who this candidate is (written into `spec.holderIdentity`): unique per replica, such as
    /// the pod name.
    pub identity: String,
    /// How long others wait, from the last change of the Lease they observed, before they
    /// take it over (written as `leaseDurationSeconds`: whole seconds). Default 15 s.
    pub lease_duration: Duration,
    /// How long after sending its last successful renewal the holder still acts as leader;
    /// shorter than `lease_duration` (see the module docs for the margin). Default 10 s.
    pub renew_deadline: Duration,
    /// How often the holder renews, and how often a candidate reads the Lease. Default 2 s.
    pub retry_period: Duration,
    /// How long one request may take before it is abandoned. Default 5 s.
    pub request_timeout: Duration,
    /// Labels set on the Lease by every write of this candidate.
    pub labels: BTreeMap<String, String>,
}

impl fmt::Debug for LeaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseConfig")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_deadline", &self.renew_deadline)
            .field("retry_period", &self.retry_period)
            .finish_non_exhaustive()
    }
}

impl LeaseConfig {
    /// The Lease `namespace/name`, contended for as `identity`, with client-go's default
    /// timings (15 s lease, 10 s renew deadline, 2 s retry period).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            labels: BTreeMap::new(),
        }
    }

    /// Sets the three timings (see the fields).
    #[must_use]
    pub fn timings(mut self, lease_duration: Duration, renew_deadline: Duration, retry_period: Duration) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self
    }

    /// Sets how long one request may take.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest error in clock *rate* (as a fraction: 0.2 is 20% fast or slow) under which
    /// two candidates never both lead: `(L - R) / (L + R)` (see the module docs).
    pub fn max_clock_rate_error(&self) -> f64 {
        let l = self.lease_duration.as_secs_f64();
        let r = self.renew_deadline.as_secs_f64();
        (l - r) / (l + r)
    }

    /// Checks that the settings are usable.
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        let bad = |reason: &str| Err(LeaseConfigError(reason.to_owned()));
        if self.identity.is_empty() {
            return bad("the identity is empty");
        }
        if self.lease_duration.subsec_nanos() != 0 || self.lease_duration.as_secs() == 0 {
            return bad("the lease duration must be a whole number of seconds, at least 1");
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return bad("the lease duration is too long");
        }
        if self.renew_deadline >= self.lease_duration {
            return bad("the renew deadline must be shorter than the lease duration");
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return bad("the retry period must be positive and shorter than the renew deadline");
        }
        if self.request_timeout.is_zero() {
            return bad("the request timeout must be positive");
        }
        Ok(())
    }
}

/// Settings that cannot work (a renew deadline not shorter than the lease, an empty identity...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lease settings: {0}")]
pub struct LeaseConfigError(pub String);

/// Why an elector stopped leading.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// The renew deadline passed without a successful renewal.
    Deadline,
    /// The Lease names another holder (or none).
    Taken(Option<String>),
    /// The Lease is gone (deleted by someone).
    Deleted,
    /// The caller released it ([`Elector::release`]) or no longer wants it
    /// ([`Elector::set_wanted`]).
    Released,
}

/// What the elector tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// This candidate leads, until [`Elector::leading_until`] unless renewed.
    Acquired,
    /// This candidate no longer leads; it had stopped acting by then.
    Lost(LostReason),
    /// The holder named by the Lease changed (`None`: nobody holds it, or there is no Lease).
    Holder(Option<String>),
}

/// An error the elector observed. It keeps going after every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The server answered with an error.
    #[error("{0}")]
    Response(ResponseError),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// A request took longer than the request timeout and was abandoned.
    #[error("no answer within {0:?}: the request was abandoned")]
    Timeout(Duration),
    /// A request could not be built.
    #[error("{0}")]
    Request(RequestError),
}

/// Why the machine waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// A request is in flight; the deadline is when it is abandoned (or leadership ends).
    Response,
    /// The next renewal, read, or takeover attempt.
    Next,
}

/// What the caller does next.
#[derive(Debug)]
pub enum Action<E = LeaseEvent> {
    /// Send this request and feed its response back under this id.
    Send(RequestId, http::Request<Vec<u8>>),
    /// Stop waiting for the response to this request: the machine gave up on it.
    Cancel(RequestId),
    /// An event for the user.
    Emit(E),
    /// An error for the user to see (log, count); the machine goes on by itself.
    Error(LeaseError),
    /// Nothing to do until input arrives or `until` passes; then poll again.
    Wait {
        /// When to poll again even if nothing arrives.
        until: Instant,
        /// Why.
        reason: WaitReason,
    },
    /// Released (or given up releasing): nothing more will happen.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Create,
    Acquire,
    Renew,
    Release,
}

impl Op {
    fn writes(self) -> bool {
        self != Op::Get
    }
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    op: Op,
    sent: Instant,
    deadline: Instant,
}

/// The Lease as last read, and when it was last seen to change.
#[derive(Debug, Clone)]
struct Observed {
    lease: Lease,
    resource_version: Option<String>,
    holder: Option<String>,
    duration: Duration,
    /// The local instant at which this version was first seen.
    since: Instant,
}

/// What is known of the Lease.
#[derive(Debug, Clone)]
enum Known {
    /// Nothing yet (or a conflict made what was known stale): read before acting.
    Unknown,
    /// There is no Lease.
    Absent,
    /// The Lease as read.
    Present(Box<Observed>),
}

/// The leader-election state machine for one Lease. See the [module documentation](self).
pub struct Elector {
    config: LeaseConfig,
    request: Request,
    known: Known,
    /// The last version read, kept when a conflict makes `known` stale (to compare with the
    /// next read: an unchanged Lease keeps its observation instant).
    last: Option<Box<Observed>>,
    leading_until: Option<Instant>,
    in_flight: Option<InFlight>,
    next_at: Option<Instant>,
    /// When the last write of this elector was answered: reads fed in that started before it
    /// may predate that write and are ignored.
    last_write_done: Option<Instant>,
    want: bool,
    /// A write conflicted: read the Lease before acting again.
    must_read: bool,
    /// Whether the elector reads the Lease itself (else the caller feeds reads in through
    /// [`Elector::observe`]; the elector still reads after a conflict).
    reads: bool,
    releasing: bool,
    stopped: bool,
    out: VecDeque<Action>,
    next_id: RequestId,
    reported_holder: Option<Option<String>>,
}

impl fmt::Debug for Elector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Elector")
            .field("lease", &self.config.name)
            .field("identity", &self.config.identity)
            .field("leading_until", &self.leading_until)
            .field("holder", &self.holder())
            .field("want", &self.want)
            .finish_non_exhaustive()
    }
}

impl Elector {
    /// An elector that wants the Lease and reads it every retry period.
    pub fn new(config: LeaseConfig) -> Result<Self, LeaseConfigError> {
        config.validate()?;
        let request = Request::namespaced::<Lease>(&config.namespace);
        // The names are checked now, so that no request fails to build later.
        if let Err(e) = request.get(&config.name, &GetParams::default()) {
            return Err(LeaseConfigError(e.to_string()));
        }
        Ok(Elector {
            config,
            request,
            known: Known::Unknown,
            last: None,
            leading_until: None,
            in_flight: None,
            next_at: None,
            last_write_done: None,
            want: true,
            must_read: false,
            reads: true,
            releasing: false,
            stopped: false,
            out: VecDeque::new(),
            next_id: 1,
            reported_holder: None,
        })
    }

    /// An elector that does not read the Lease periodically: the caller feeds what it reads (a
    /// LIST of several Leases, say) through [`observe`](Self::observe). It still reads the
    /// Lease after one of its writes conflicts.
    pub fn fed(config: LeaseConfig) -> Result<Self, LeaseConfigError> {
        let mut e = Self::new(config)?;
        e.reads = false;
        Ok(e)
    }

    /// Starts wanting the Lease, or not (see [`set_wanted`](Self::set_wanted)).
    #[must_use]
    pub fn with_wanted(mut self, want: bool) -> Self {
        self.want = want;
        self
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Whether this candidate leads at `now`: true from a successful acquisition until
    /// `renew_deadline` after the last successful renewal was sent. Check it, with a fresh
    /// `now`, before every action only the leader may take.
    pub fn is_leading(&self, now: Instant) -> bool {
        self.leading_until.is_some_and(|d| now < d)
    }

    /// Until when this candidate leads, unless it renews first.
    pub fn leading_until(&self) -> Option<Instant> {
        self.leading_until
    }

    /// The holder the Lease named when last read.
    pub fn holder(&self) -> Option<&str> {
        match &self.known {
            Known::Present(o) => o.holder.as_deref(),
            _ => None,
        }
    }

    /// Whether the Lease, as last read, could be taken at `now`: there is none, it names no
    /// holder, or it has not changed for its holder's lease duration.
    pub fn is_free(&self, now: Instant) -> bool {
        match &self.known {
            Known::Unknown => false,
            Known::Absent => true,
            Known::Present(o) => o.holder.is_none() || now >= o.since + o.duration,
        }
    }

    /// Whether the Lease names this candidate (as last read), or it leads.
    pub fn holds(&self) -> bool {
        self.leading_until.is_some() || self.holder() == Some(self.config.identity.as_str())
    }

    /// Whether this candidate wants the Lease.
    pub fn wanted(&self) -> bool {
        self.want
    }

    /// Whether the Lease has been read (or fed) at least once.
    pub fn is_known(&self) -> bool {
        !matches!(self.known, Known::Unknown) || self.last.is_some()
    }

    /// Whether a request is in flight.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.in_flight.as_ref().map(|f| f.id)
    }

    /// Whether an acquisition (a create or a takeover) is in flight.
    pub fn acquiring(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| matches!(f.op, Op::Create | Op::Acquire))
    }

    /// Wants the Lease, or not. No longer wanting it stops leadership at once (a
    /// [`LeaseEvent::Lost`] is emitted), then the Lease is given back.
    pub fn set_wanted(&mut self, now: Instant, want: bool) {
        if self.want == want || self.releasing {
            return;
        }
        self.want = want;
        if !want && self.leading_until.take().is_some() {
            self.out.push_back(Action::Emit(LeaseEvent::Lost(LostReason::Released)));
        }
        self.next_at = Some(now);
    }

    /// Shuts down: leadership stops at once, the Lease is given back (its holder cleared) if it
    /// names this candidate, then [`poll`](Self::poll) answers [`Action::Stopped`].
    pub fn release(&mut self, now: Instant) {
        if self.releasing {
            return;
        }
        self.releasing = true;
        self.want = false;
        if self.leading_until.take().is_some() {
            self.out.push_back(Action::Emit(LeaseEvent::Lost(LostReason::Released)));
        }
        self.next_at = Some(now);
    }

    /// Whether the elector has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// What to do next. Drain until [`Action::Wait`] or [`Action::Stopped`].
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Action {
        if let Some(a) = self.out.pop_front() {
            return a;
        }
        if self.leading_until.is_some_and(|d| now >= d) {
            self.leading_until = None;
            return Action::Emit(LeaseEvent::Lost(LostReason::Deadline));
        }
        if let Some(f) = &self.in_flight {
            if now >= f.deadline {
                let id = f.id;
                self.in_flight = None;
                self.next_at = Some(now + self.config.retry_period);
                self.out.push_back(Action::Error(LeaseError::Timeout(self.config.request_timeout)));
                return Action::Cancel(id);
            }
            return self.wait(f.deadline, WaitReason::Response);
        }
        if self.stopped {
            return Action::Stopped;
        }
        if let Some(at) = self.next_at
            && now < at
        {
            return self.wait(at, WaitReason::Next);
        }
        match self.step(now) {
            Some(op) => self.send(now, wall, op),
            None if self.releasing => {
                self.stopped = true;
                Action::Stopped
            }
            None => {
                let at = self.idle_until(now);
                self.next_at = Some(at);
                self.wait(at, WaitReason::Next)
            }
        }
    }

    /// A wait until `until`, or the end of leadership if sooner.
    fn wait(&self, until: Instant, reason: WaitReason) -> Action {
        let until = self.leading_until.map_or(until, |d| d.min(until));
        Action::Wait { until, reason }
    }

    /// When to act again with nothing in flight and nothing to do now.
    fn idle_until(&self, now: Instant) -> Instant {
        let mut at = now + self.config.retry_period;
        if self.want
            && let Known::Present(o) = &self.known
            && o.holder.is_some()
        {
            at = at.min(o.since + o.duration);
        }
        at
    }

    /// The next request, if any.
    fn step(&self, now: Instant) -> Option<Op> {
        let holds = self.holds();
        match &self.known {
            Known::Unknown if self.reads || self.must_read => Some(Op::Get),
            Known::Unknown => None,
            _ if self.releasing || (holds && !self.want) => holds.then_some(Op::Release),
            Known::Absent if self.want => Some(Op::Create),
            _ if holds => Some(Op::Renew),
            _ if self.want && self.is_free(now) => Some(Op::Acquire),
            _ => self.reads.then_some(Op::Get),
        }
    }

    fn send(&mut self, now: Instant, wall: SystemTime, op: Op) -> Action {
        let built = match op {
            Op::Get => self.request.get(&self.config.name, &GetParams::default()),
            Op::Create => self.request.create(&PostParams::default(), &self.new_lease(wall)),
            Op::Acquire | Op::Renew | Op::Release => {
                let lease = self.written(wall, op);
                self.request.replace(&self.config.name, &PostParams::default(), &lease)
            }
        };
        match built {
            Ok(req) => {
                let id = self.next_id;
                self.next_id += 1;
                let deadline = now + self.config.request_timeout;
                self.in_flight = Some(InFlight { id, op, sent: now, deadline });
                Action::Send(id, req)
            }
            Err(e) => {
                self.next_at = Some(now + self.config.retry_period);
                if self.releasing {
                    self.stopped = true;
                }
                Action::Error(LeaseError::Request(e))
            }
        }
    }

    fn duration_seconds(&self) -> i32 {
        // Checked by `validate`.
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn new_lease(&self, wall: SystemTime) -> Lease {
        let t = micro_time(wall);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                labels: (!self.config.labels.is_empty()).then(|| self.config.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(t.clone()),
                renew_time: Some(t),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// The Lease as last read, changed for a takeover, a renewal or a release.
    fn written(&self, wall: SystemTime, op: Op) -> Lease {
        let observed = match &self.known {
            Known::Present(o) => Some(&o.lease),
            _ => self.last.as_ref().map(|o| &o.lease),
        };
        let mut lease = observed.cloned().unwrap_or_else(|| self.new_lease(wall));
        if !self.config.labels.is_empty() {
            let labels = lease.metadata.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.config.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        let t = micro_time(wall);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        match op {
            Op::Release => {
                spec.holder_identity = None;
                spec.renew_time = Some(t);
            }
            _ => {
                let ours = spec.holder_identity.as_deref() == Some(self.config.identity.as_str());
                if !ours {
                    spec.acquire_time = Some(t.clone());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                spec.holder_identity = Some(self.config.identity.clone());
                spec.lease_duration_seconds = Some(self.duration_seconds());
                spec.renew_time = Some(t);
            }
        }
        lease
    }

    /// Feeds the response to request `id`: its status, headers and whole body.
    pub fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        let Some(f) = self.in_flight.take_if(|f| f.id == id) else { return };
        let result = Response::new(status, headers, body).object::<Lease>();
        if f.op.writes() {
            self.last_write_done = Some(now);
        }
        match result {
            Ok(lease) => {
                self.observe_lease(now, lease);
                let ours = self.holder() == Some(self.config.identity.as_str());
                if matches!(f.op, Op::Create | Op::Acquire | Op::Renew) && ours && self.want {
                    let until = f.sent + self.config.renew_deadline;
                    if now < until {
                        let was = self.leading_until.replace(until);
                        if was.is_none() {
                            self.out.push_back(Action::Emit(LeaseEvent::Acquired));
                        }
                    }
                }
                if f.op == Op::Release && self.releasing {
                    self.stopped = true;
                }
                // At once: a free Lease just read, or one that names this candidate while it does
                // not lead (an answer that came too late): renewing it now is leading again.
                let free = matches!(f.op, Op::Get) && self.is_free(now) && !self.holds();
                let unled = self.holds() && !self.is_leading(now);
                self.next_at = Some(if self.want && (free || unled) { now } else { self.idle_until(now) });
            }
            Err(e) if e.is_not_found() => {
                if f.op == Op::Get {
                    self.observe_absent();
                    self.next_at = Some(if self.want { now } else { self.idle_until(now) });
                } else {
                    // Deleted under us: read again.
                    self.stale();
                    self.next_at = Some(now);
                }
            }
            Err(e) if f.op.writes() && e.http_status() == 409 => {
                // Someone else wrote first (Conflict), or created it first (AlreadyExists):
                // read what they wrote.
                self.stale();
                self.next_at = Some(now);
                if !matches!(e.reason(), Some(Reason::Conflict | Reason::AlreadyExists)) {
                    self.out.push_back(Action::Error(LeaseError::Response(e)));
                }
            }
            Err(e) => self.failed(now, f.op, LeaseError::Response(e)),
        }
    }

    /// Feeds a transport failure of request `id`.
    pub fn on_transport_error(&mut self, now: Instant, id: RequestId, error: impl Into<String>) {
        let Some(f) = self.in_flight.take_if(|f| f.id == id) else { return };
        if f.op.writes() {
            // The write may have landed: what is known may be stale.
            self.last_write_done = Some(now);
        }
        self.failed(now, f.op, LeaseError::Transport(error.into()));
    }

    fn failed(&mut self, now: Instant, op: Op, error: LeaseError) {
        self.out.push_back(Action::Error(error));
        if op == Op::Release && self.releasing {
            // One attempt: the Lease expires by itself otherwise.
            self.stopped = true;
        }
        self.next_at = Some(now + self.config.retry_period);
    }

    /// Feeds a read of the Lease made by the caller (`None`: there is none), which started at
    /// `read_started`: reads that started before one of this elector's writes was answered, or
    /// while one is in flight, are ignored (they may predate it).
    pub fn observe(&mut self, now: Instant, read_started: Instant, lease: Option<&Lease>) {
        if self.in_flight.as_ref().is_some_and(|f| f.op.writes())
            || self.last_write_done.is_some_and(|t| read_started <= t)
        {
            return;
        }
        match lease {
            Some(lease) => self.observe_lease(now, lease.clone()),
            None => self.observe_absent(),
        }
        if self.next_at.is_none_or(|at| at > now) && self.want && !self.holds() && self.is_free(now) {
            self.next_at = Some(now);
        }
    }

    fn stale(&mut self) {
        self.must_read = true;
        if let Known::Present(o) = std::mem::replace(&mut self.known, Known::Unknown) {
            self.last = Some(o);
        }
    }

    fn observe_absent(&mut self) {
        self.known = Known::Absent;
        self.last = None;
        self.must_read = false;
        self.report_holder(None);
        if self.leading_until.take().is_some() {
            self.out.push_back(Action::Emit(LeaseEvent::Lost(LostReason::Deleted)));
        }
    }

    fn observe_lease(&mut self, now: Instant, lease: Lease) {
        let resource_version = lease.metadata.resource_version.clone();
        let spec = lease.spec.as_ref();
        let holder = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
        let duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(self.config.lease_duration, Duration::from_secs);
        let previous = match std::mem::replace(&mut self.known, Known::Unknown) {
            Known::Present(o) => Some(o),
            _ => self.last.take(),
        };
        let since = match previous {
            Some(p) if p.resource_version == resource_version && p.holder == holder => p.since,
            _ => now,
        };
        self.last = None;
        self.must_read = false;
        self.report_holder(holder.clone());
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        if !ours && self.leading_until.take().is_some() {
            self.out.push_back(Action::Emit(LeaseEvent::Lost(LostReason::Taken(holder.clone()))));
        }
        self.known = Known::Present(Box::new(Observed { lease, resource_version, holder, duration, since }));
    }

    fn report_holder(&mut self, holder: Option<String>) {
        if self.reported_holder.as_ref() != Some(&holder) {
            self.reported_holder = Some(holder.clone());
            self.out.push_back(Action::Emit(LeaseEvent::Holder(holder)));
        }
    }
}

/// A wall-clock time as the API's `MicroTime`.
fn micro_time(wall: SystemTime) -> MicroTime {
    let micros = wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let ts = i64::try_from(micros).ok().and_then(|m| Timestamp::from_microsecond(m).ok());
    MicroTime(ts.unwrap_or(Timestamp::UNIX_EPOCH))
}
