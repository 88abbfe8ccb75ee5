//! A watch's body read ahead of its reader, by a task of its own.
//!
//! Reading a watch is two jobs in a row: the transport's (the socket, TLS, the HTTP framing)
//! and the reader's (decoding the events). Done by one task they take turns on one core, and a
//! watch is as slow as the two together. [`read_ahead`] gives the transport's job a task of its
//! own, which the transport runs on its executor ([`Transport::spawn`]): it reads the body
//! into a queue while the reader decodes what came before, so on a machine with a core to
//! spare the watch is as fast as the slower of the two jobs, not their sum.
//!
//! The queue holds at most [`BUDGET`] bytes: past that the task stops reading (and TCP holds
//! the server back), and it is woken again only once the reader has taken half of it, so a
//! reader slower than the network costs one wake-up per half budget, not one per chunk. A
//! reader that waits for data is woken by the first chunk that comes. Dropping the reader
//! stops the task, which drops the body (and closes its connection).
//!
//! A transport with no executor to spawn on hands the task back, and the reader then drives
//! it from its own polls: the same queue, without the second task.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::BoxFuture;

use crate::transport::{Body, Transport, TransportError};

/// The most bytes read ahead of the reader (the queue's chunks together; one chunk may take it
/// past). The task is woken again once the reader has left half of it.
pub const BUDGET: usize = 256 * 1024;

/// `body`, read ahead of its reader by a task that `transport` spawns (or, when it cannot,
/// driven by the reader's own polls), at most `budget` bytes ahead (one chunk may take it
/// past; a `budget` of 0 is taken as 1: one chunk at a time).
pub fn read_ahead(body: Body, transport: &dyn Transport, budget: usize) -> Body {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            chunks: VecDeque::new(),
            queued: 0,
            ended: false,
            reader_gone: false,
            reader: None,
            pump: None,
            full: false,
        }),
        budget: budget.max(1),
    });
    let pump = Pump { body: Some(body), shared: shared.clone() };
    let inline = transport.spawn(Box::pin(pump)).err();
    Box::pin(Reader { shared, inline })
}

struct Shared {
    state: Mutex<State>,
    budget: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    /// What the task read and the reader has not taken yet, in order (an error last).
    chunks: VecDeque<Result<Bytes, TransportError>>,
    /// The bytes in `chunks`.
    queued: usize,
    /// The body ended: nothing comes after `chunks`.
    ended: bool,
    /// The reader was dropped: the task stops.
    reader_gone: bool,
    /// The reader, waiting for a chunk.
    reader: Option<Waker>,
    /// The task, when it last waited: for room in the queue, or for the body (and, either
    /// way, for the reader to go).
    pump: Option<Waker>,
    /// The task waits for room in the queue.
    full: bool,
}

/// Keeps `cx`'s waker in `slot` (not cloned again when it is the one already there).
fn remember(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The task: reads the body into the queue while there is room.
struct Pump {
    body: Option<Body>,
    shared: Arc<Shared>,
}

impl std::future::Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            {
                let mut state = this.shared.lock();
                if state.reader_gone {
                    drop(state);
                    this.body = None;
                    return Poll::Ready(());
                }
                state.full = state.queued >= this.shared.budget;
                if state.full {
                    remember(&mut state.pump, cx);
                    return Poll::Pending;
                }
            }
            let Some(body) = this.body.as_mut() else { return Poll::Ready(()) };
            let item = match body.as_mut().poll_next(cx) {
                Poll::Pending => {
                    // Waiting for the body: the reader's going must still stop the task (and
                    // close the connection) at once, not when the server next writes.
                    let mut state = this.shared.lock();
                    if state.reader_gone {
                        drop(state);
                        this.body = None;
                        return Poll::Ready(());
                    }
                    remember(&mut state.pump, cx);
                    return Poll::Pending;
                }
                Poll::Ready(item) => item,
            };
            let (reader, ended) = {
                let mut state = this.shared.lock();
                match item {
                    Some(chunk) => {
                        if let Ok(bytes) = &chunk {
                            state.queued += bytes.len();
                        }
                        state.chunks.push_back(chunk);
                    }
                    None => state.ended = true,
                }
                (state.reader.take(), state.ended)
            };
            if let Some(reader) = reader {
                reader.wake();
            }
            if ended {
                this.body = None;
                return Poll::Ready(());
            }
        }
    }
}

impl Drop for Pump {
    /// A task dropped before its body ended (its executor shut down) leaves the reader an
    /// error, not a wait that never ends.
    fn drop(&mut self) {
        let reader = {
            let mut state = self.shared.lock();
            if state.ended || state.reader_gone {
                return;
            }
            state.ended = true;
            state.chunks.push_back(Err(TransportError::Closed(
                "the task reading the response ahead was stopped before the body ended".into(),
            )));
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// The reader's end: the queue's chunks, in order.
struct Reader {
    shared: Arc<Shared>,
    /// The task, when the transport could not spawn it: driven from here.
    inline: Option<BoxFuture<'static, ()>>,
}

impl Stream for Reader {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (item, pump) = {
                let mut state = this.shared.lock();
                match state.chunks.pop_front() {
                    Some(chunk) => {
                        if let Ok(bytes) = &chunk {
                            state.queued -= bytes.len();
                        }
                        // The task waits for room (it stopped at the budget): wake it once
                        // half the budget is free.
                        let pump = if state.full && state.queued <= this.shared.budget / 2 {
                            state.full = false;
                            state.pump.take()
                        } else {
                            None
                        };
                        (Poll::Ready(Some(chunk)), pump)
                    }
                    None if state.ended => (Poll::Ready(None), None),
                    None if this.inline.is_some() => (Poll::Pending, None),
                    None => {
                        state.reader = Some(cx.waker().clone());
                        (Poll::Pending, None)
                    }
                }
            };
            if let Some(pump) = pump {
                pump.wake();
            }
            match (item, this.inline.as_mut()) {
                (Poll::Pending, Some(task)) => {
                    // No task of its own: read the body here, until it gives a chunk or waits.
                    if task.as_mut().poll(cx).is_ready() {
                        this.inline = None;
                    }
                    let state = this.shared.lock();
                    if state.chunks.is_empty() && !state.ended {
                        return Poll::Pending;
                    }
                }
                (item, _) => return item,
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let pump = {
            let mut state = self.shared.lock();
            state.reader_gone = true;
            state.chunks.clear();
            state.pump.take()
        };
        if let Some(pump) = pump {
            pump.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt as _;
    use futures_util::task::{ArcWake, waker};

    use super::*;

    /// A body whose chunks the test puts in; `open` while more may come.
    #[derive(Default)]
    struct Source {
        chunks: VecDeque<Result<Bytes, TransportError>>,
        open: bool,
        pulled: usize,
        dropped: bool,
        waker: Option<Waker>,
    }

    struct TestBody(Arc<Mutex<Source>>);

    impl Stream for TestBody {
        type Item = Result<Bytes, TransportError>;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let mut source = self.0.lock().unwrap();
            match source.chunks.pop_front() {
                Some(chunk) => {
                    source.pulled += 1;
                    Poll::Ready(Some(chunk))
                }
                None if source.open => {
                    source.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                None => Poll::Ready(None),
            }
        }
    }

    impl Drop for TestBody {
        fn drop(&mut self) {
            self.0.lock().unwrap().dropped = true;
        }
    }

    fn source(chunks: usize, size: usize, open: bool) -> (Arc<Mutex<Source>>, Body) {
        let source = Arc::new(Mutex::new(Source {
            chunks: (0..chunks).map(|i| Ok(Bytes::from(vec![(i % 251) as u8; size]))).collect(),
            open,
            ..Source::default()
        }));
        (source.clone(), Box::pin(TestBody(source)))
    }

    /// A transport that keeps what it is asked to spawn, for the test to poll (or that
    /// spawns nothing).
    struct Spawner {
        spawns: bool,
        tasks: Mutex<Vec<BoxFuture<'static, ()>>>,
    }

    impl Spawner {
        fn new(spawns: bool) -> Self {
            Spawner { spawns, tasks: Mutex::new(Vec::new()) }
        }
        fn take(&self) -> BoxFuture<'static, ()> {
            let mut tasks = self.tasks.lock().unwrap();
            assert_eq!(tasks.len(), 1, "one task per body");
            tasks.pop().unwrap()
        }
    }

    impl Transport for Spawner {
        fn send(
            &self,
            _: http::Request<Vec<u8>>,
        ) -> BoxFuture<'static, Result<crate::TransportResponse, TransportError>> {
            Box::pin(async { Err(TransportError::Other("this transport sends nothing".into())) })
        }
        fn sleep_until(&self, _: std::time::Instant) -> BoxFuture<'static, ()> {
            Box::pin(std::future::pending())
        }
        fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), BoxFuture<'static, ()>> {
            if !self.spawns {
                return Err(task);
            }
            self.tasks.lock().unwrap().push(task);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), waker(wakes))
    }

    fn count(wakes: &Wakes) -> usize {
        wakes.0.load(Ordering::SeqCst)
    }

    #[test]
    fn the_task_reads_at_most_the_budget_ahead_and_is_woken_once_half_is_taken() {
        let (src, body) = source(1000, 10, false);
        let transport = Spawner::new(true);
        let mut reader = read_ahead(body, &transport, 200);
        let mut task = transport.take();
        let (pump_wakes, pump_waker) = counter();
        let (_, reader_waker) = counter();
        let (mut pump_cx, mut reader_cx) = (Context::from_waker(&pump_waker), Context::from_waker(&reader_waker));

        assert!(task.as_mut().poll(&mut pump_cx).is_pending(), "the task stops at the budget");
        assert_eq!(src.lock().unwrap().pulled, 20, "200 bytes ahead, no more");
        let mut taken = Vec::new();
        let mut polls = 1;
        loop {
            match reader.as_mut().poll_next(&mut reader_cx) {
                Poll::Ready(Some(chunk)) => taken.push(chunk.unwrap()),
                Poll::Ready(None) => break,
                Poll::Pending => panic!("the task was not woken though the queue ran dry"),
            }
            let pulled = src.lock().unwrap().pulled;
            assert!(pulled - taken.len() <= 20, "{pulled} read for {} taken", taken.len());
            // The task runs when it was woken, as an executor would run it.
            if count(&pump_wakes) == polls {
                assert_eq!(taken.len() % 10, 0, "woken after half of the budget was taken");
                polls += 1;
                let _ = task.as_mut().poll(&mut pump_cx);
            }
        }
        assert!(task.as_mut().poll(&mut pump_cx).is_ready(), "the task ends with the body");
        assert!(src.lock().unwrap().dropped, "and drops it");
        assert_eq!(taken.len(), 1000);
        for (i, chunk) in taken.iter().enumerate() {
            assert_eq!(chunk[..], vec![(i % 251) as u8; 10][..], "chunk {i} in its place");
        }
        assert_eq!(count(&pump_wakes), 1000 / 10 - 1, "one wake-up per 100 bytes taken, not per chunk");
    }

    #[test]
    fn a_waiting_reader_is_woken_by_the_first_chunk_and_the_end() {
        let (src, body) = source(0, 10, true);
        let transport = Spawner::new(true);
        let mut reader = read_ahead(body, &transport, BUDGET);
        let mut task = transport.take();
        let (reader_wakes, reader_waker) = counter();
        let (_, pump_waker) = counter();
        let (mut pump_cx, mut reader_cx) = (Context::from_waker(&pump_waker), Context::from_waker(&reader_waker));

        assert!(task.as_mut().poll(&mut pump_cx).is_pending());
        assert!(reader.as_mut().poll_next(&mut reader_cx).is_pending());
        src.lock().unwrap().chunks.push_back(Ok(Bytes::from_static(b"one")));
        assert!(task.as_mut().poll(&mut pump_cx).is_pending());
        assert_eq!(count(&reader_wakes), 1);
        let Poll::Ready(Some(Ok(chunk))) = reader.as_mut().poll_next(&mut reader_cx) else { panic!("a chunk") };
        assert_eq!(&chunk[..], b"one");
        assert!(reader.as_mut().poll_next(&mut reader_cx).is_pending());
        src.lock().unwrap().open = false;
        assert!(task.as_mut().poll(&mut pump_cx).is_ready());
        assert_eq!(count(&reader_wakes), 2);
        assert!(matches!(reader.as_mut().poll_next(&mut reader_cx), Poll::Ready(None)));
    }

    #[test]
    fn errors_come_in_their_place_and_without_a_task_the_reader_drives_the_body() {
        for spawns in [true, false] {
            let (src, body) = source(3, 4, true);
            src.lock().unwrap().chunks.push_back(Err(TransportError::Closed("cut".into())));
            src.lock().unwrap().open = false;
            let transport = Spawner::new(spawns);
            let reader = read_ahead(body, &transport, 8);
            let items: Vec<_> = if spawns {
                let task = transport.take();
                futures_executor::block_on(futures_util::future::join(task, reader.collect::<Vec<_>>())).1
            } else {
                assert!(transport.tasks.lock().unwrap().is_empty());
                futures_executor::block_on(reader.collect())
            };
            let described: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Ok(bytes) => format!("{} bytes", bytes.len()),
                    Err(e) => e.to_string(),
                })
                .collect();
            assert_eq!(
                described,
                ["4 bytes", "4 bytes", "4 bytes", "the connection closed mid-response: cut"],
                "spawned: {spawns}"
            );
            assert!(src.lock().unwrap().dropped);
        }
    }

    #[test]
    fn driven_by_the_reader_it_still_reads_no_more_than_the_budget_ahead() {
        let (src, body) = source(100, 10, false);
        let transport = Spawner::new(false);
        let mut reader = read_ahead(body, &transport, 50);
        let (_, reader_waker) = counter();
        let mut cx = Context::from_waker(&reader_waker);
        let mut taken = 0;
        while let Poll::Ready(Some(chunk)) = reader.as_mut().poll_next(&mut cx) {
            chunk.unwrap();
            taken += 1;
            let pulled = src.lock().unwrap().pulled;
            assert!(pulled - taken <= 5, "{pulled} read for {taken} taken");
        }
        assert_eq!(taken, 100);
        assert!(matches!(reader.as_mut().poll_next(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_dropped_reader_stops_the_task_which_drops_the_body() {
        let (src, body) = source(100, 10, true);
        let transport = Spawner::new(true);
        let mut reader = read_ahead(body, &transport, 50);
        let mut task = transport.take();
        let (pump_wakes, pump_waker) = counter();
        let (_, reader_waker) = counter();
        assert!(task.as_mut().poll(&mut Context::from_waker(&pump_waker)).is_pending());
        assert!(matches!(reader.as_mut().poll_next(&mut Context::from_waker(&reader_waker)), Poll::Ready(Some(Ok(_)))));
        drop(reader);
        assert_eq!(count(&pump_wakes), 1, "the waiting task is told");
        assert!(task.as_mut().poll(&mut Context::from_waker(&pump_waker)).is_ready());
        assert!(src.lock().unwrap().dropped, "the body (and its connection) is dropped");
    }

    #[test]
    fn a_reader_dropped_while_the_task_waits_for_the_server_stops_it_at_once() {
        let (src, body) = source(2, 10, true);
        let transport = Spawner::new(true);
        let mut reader = read_ahead(body, &transport, BUDGET);
        let mut task = transport.take();
        let (pump_wakes, pump_waker) = counter();
        let (_, reader_waker) = counter();
        assert!(task.as_mut().poll(&mut Context::from_waker(&pump_waker)).is_pending(), "the server is quiet");
        assert!(matches!(reader.as_mut().poll_next(&mut Context::from_waker(&reader_waker)), Poll::Ready(Some(Ok(_)))));
        assert_eq!(count(&pump_wakes), 0, "room in the queue is no news to a task that waits for the server");
        drop(reader);
        assert_eq!(count(&pump_wakes), 1);
        assert!(task.as_mut().poll(&mut Context::from_waker(&pump_waker)).is_ready());
        assert!(src.lock().unwrap().dropped, "the connection is closed, not left until the server writes");
    }

    #[test]
    fn a_task_dropped_before_the_end_leaves_the_reader_an_error() {
        let (_src, body) = source(1, 10, true);
        let transport = Spawner::new(true);
        let mut reader = read_ahead(body, &transport, 50);
        let mut task = transport.take();
        let (reader_wakes, reader_waker) = counter();
        let (_, pump_waker) = counter();
        let mut cx = Context::from_waker(&reader_waker);
        assert!(task.as_mut().poll(&mut Context::from_waker(&pump_waker)).is_pending());
        assert!(matches!(reader.as_mut().poll_next(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(reader.as_mut().poll_next(&mut cx).is_pending());
        drop(task);
        assert_eq!(count(&reader_wakes), 1);
        let Poll::Ready(Some(Err(e))) = reader.as_mut().poll_next(&mut cx) else { panic!("an error") };
        assert!(matches!(e, TransportError::Closed(_)), "{e}");
        assert!(matches!(reader.as_mut().poll_next(&mut cx), Poll::Ready(None)));
    }
}
