//! When to retry a request: a pure policy the async layer obeys.
//!
//! Only idempotent requests (GET, HEAD) are retried by default, on 429 Too Many Requests,
//! 503 Service Unavailable and 504 Gateway Timeout, and on connection failures, with
//! exponential backoff and jitter, honouring `Retry-After`. Writes are not retried blindly: a
//! POST that timed out may have been applied.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::backoff::Backoff;

/// The retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// How many retries after the first attempt.
    pub max_retries: u32,
    /// The delays between attempts.
    pub backoff: Backoff,
    /// The longest `Retry-After` honoured; a server asking for more gets an error instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
                factor: 2.0,
                jitter: 0.2,
            },
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Why a request failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with this status (and maybe `Retry-After` seconds).
    Status(StatusCode, Option<u32>),
    /// The connection could not be made: nothing reached the server.
    Connect,
    /// The connection broke after the request was sent.
    Broken,
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// How long to wait before retrying after `attempt` failed attempts (1 for the first), or
    /// `None` to give up. `random` is in `[0, 1)`, drawn by the caller.
    pub fn retry_after(&self, method: &Method, failure: Failure, attempt: u32, random: f64) -> Option<Duration> {
        if attempt > self.max_retries {
            return None;
        }
        let idempotent = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let server_asked = match failure {
            // Nothing reached the server: safe to retry any request.
            Failure::Connect => None,
            Failure::Broken if idempotent => None,
            Failure::Status(s, after) if idempotent && matches!(s.as_u16(), 429 | 503 | 504) => after,
            // A 429 is refused before the request is processed: writes may retry it too.
            Failure::Status(s, after) if s.as_u16() == 429 => after,
            _ => return None,
        };
        let delay = self.backoff.delay(attempt, random);
        match server_asked.map(|s| Duration::from_secs(u64::from(s))) {
            Some(asked) if asked > self.max_retry_after => None,
            Some(asked) => Some(delay.max(asked)),
            None => Some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_requests_retry_on_429_503_504() {
        let p = RetryPolicy::default();
        for s in [429, 503, 504] {
            let st = StatusCode::from_u16(s).unwrap();
            assert!(p.retry_after(&Method::GET, Failure::Status(st, None), 1, 0.0).is_some(), "{s}");
        }
        assert!(
            p.retry_after(&Method::GET, Failure::Status(StatusCode::INTERNAL_SERVER_ERROR, None), 1, 0.0).is_none()
        );
        assert!(p.retry_after(&Method::GET, Failure::Status(StatusCode::NOT_FOUND, None), 1, 0.0).is_none());
    }

    #[test]
    fn writes_are_not_retried_blindly() {
        let p = RetryPolicy::default();
        let s503 = Failure::Status(StatusCode::SERVICE_UNAVAILABLE, None);
        assert!(p.retry_after(&Method::POST, s503, 1, 0.0).is_none());
        assert!(p.retry_after(&Method::PATCH, Failure::Broken, 1, 0.0).is_none());
        // Refused before processing: safe.
        assert!(p.retry_after(&Method::POST, Failure::Connect, 1, 0.0).is_some());
        assert!(
            p.retry_after(&Method::POST, Failure::Status(StatusCode::TOO_MANY_REQUESTS, Some(1)), 1, 0.0).is_some()
        );
    }

    #[test]
    fn retry_after_and_limits() {
        let p = RetryPolicy::default();
        let f = |after| Failure::Status(StatusCode::TOO_MANY_REQUESTS, after);
        assert_eq!(p.retry_after(&Method::GET, f(Some(7)), 1, 0.0), Some(Duration::from_secs(7)));
        assert_eq!(p.retry_after(&Method::GET, f(None), 2, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(p.retry_after(&Method::GET, f(Some(3600)), 1, 0.0), None);
        assert_eq!(p.retry_after(&Method::GET, f(None), 4, 0.0), None);
        assert_eq!(RetryPolicy::never().retry_after(&Method::GET, f(None), 1, 0.0), None);
    }
}
