//! The watch over one client connection, in the task that serves it: a connection that has
//! not delivered a complete request head `header_read_timeout` after it was accepted is
//! dropped; one with no request in flight for `keepalive_timeout` (HTTP/1.1: or for
//! `header_read_timeout`, whichever is shorter), or told to stop, is shut down gracefully.
//! On HTTP/1.1 that bounds a kept-alive connection's next head too: hyper closes a
//! connection shut down gracefully between requests, a partly received head included.
//!
//! The connection is polled on every wake of its task; the watch (its timer and the stop
//! signal) only when one of them woke it. A `select!` over the three would poll the timer
//! and the stop signal on every wake too: on a kept-alive HTTP/1.1 connection that is two
//! wakes per request, about 600 instructions of a pass-through's 46,700 (callgrind).
//!
//! An HTTP/1.1 connection that has rested [`RELEASE_AFTER`] between two requests is told to
//! release what it holds only for requests (hyper's buffers: see `runtime/plain.rs`). The
//! timer decides it, so a busy connection pays nothing per request for it: its timer fires
//! once per [`RELEASE_AFTER`] instead of once per idle timeout.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use tokio::sync::watch;
use tokio::time::Instant;

use super::server::ServeOptions;
use crate::proxy::conn::{Activity, Phase};

/// How long an HTTP/1.1 connection rests between two requests before it releases hyper's
/// state. A connection used more often keeps it, as rebuilding it costs a few thousand
/// instructions; the time bounds how many connections hold it at once (freed heap is not
/// returned to the system, so the peak is what RSS keeps: with 1 s, 16 KiB per connection
/// at 5,000 opened in 2 s; with 100 ms, see bench/idle.sh). A busy connection's timer fires
/// once per this time.
const RELEASE_AFTER: Duration = Duration::from_millis(100);

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client connection as its watch drives it.
pub(super) trait Served: Future<Output = Result<(), BoxError>> {
    /// Finishes what is in flight, then closes.
    fn graceful_shutdown(self: Pin<&mut Self>);
    /// Drops what the connection holds only for requests; called when it is between two
    /// (see `Activity::at_rest`). `false`: it never can (HTTP/2, another server).
    fn release(self: Pin<&mut Self>) -> bool;
}

pin_project! {
    /// A hyper-util connection (`auto`, over TLS and on the admin port) as a [`Served`]: it
    /// cannot release anything.
    pub(super) struct Graceful<C> {
        #[pin]
        conn: C,
    }
}

impl<C> Graceful<C> {
    pub(super) fn new(conn: C) -> Self {
        Self { conn }
    }
}

impl<C> Future for Graceful<C>
where
    C: GracefulConnection,
    C::Error: Into<BoxError>,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().conn.poll(cx).map_err(Into::into)
    }
}

impl<C> Served for Graceful<C>
where
    C: GracefulConnection,
    C::Error: Into<BoxError>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.project().conn.graceful_shutdown();
    }

    fn release(self: Pin<&mut Self>) -> bool {
        false
    }
}

/// What the watch decides when its timer fires.
enum Check {
    /// Nothing to do before `Instant`.
    Wait(Instant),
    /// No complete request head since the accept: drop it.
    Silent,
    /// No request in flight for `keepalive_timeout`: shut it down gracefully.
    Idle,
    /// Resting since the request that ended at `Instant`: release hyper's state.
    Release(Instant),
}

/// Whether (and after which request) the connection may still release its state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Not since the accept.
    Never,
    /// Not since the request that ended at `Instant` (it did then).
    Released(Instant),
    /// It cannot.
    Unable,
}

fn check(activity: &Activity, options: &ServeOptions, rest: Rest) -> Check {
    let now = Instant::now();
    // HTTP/1.1: the next head must arrive within `header_read_timeout` of the last answer
    // (hyper's own per-request header timer is off; see `ServeOptions::builder`).
    let idle_limit = if activity.is_h2() {
        options.keepalive_timeout
    } else {
        options.keepalive_timeout.min(options.header_read_timeout)
    };
    let deadline = match activity.phase() {
        Phase::Unused => {
            let deadline = activity.accepted() + options.header_read_timeout;
            return if now >= deadline {
                Check::Silent
            } else {
                // A request may start and end before the deadline: look again after one
                // idle period at the latest (or in time to release its state).
                let again = if rest == Rest::Unable {
                    idle_limit
                } else {
                    idle_limit.min(RELEASE_AFTER)
                };
                Check::Wait(deadline.min(now + again))
            };
        }
        Phase::Busy if rest == Rest::Unable => return Check::Wait(now + idle_limit),
        Phase::Busy => return Check::Wait(now + idle_limit.min(RELEASE_AFTER)),
        Phase::IdleSince(last_end) => last_end + idle_limit,
    };
    if now >= deadline {
        return Check::Idle;
    }
    match (activity.phase(), rest) {
        (_, Rest::Unable) => Check::Wait(deadline),
        (Phase::IdleSince(last_end), rest) if rest != Rest::Released(last_end) => {
            let release = last_end + RELEASE_AFTER;
            if now >= release {
                Check::Release(last_end)
            } else {
                Check::Wait(deadline.min(release))
            }
        }
        _ => Check::Wait(deadline),
    }
}

/// The waker the watch's timer and stop signal are polled with: it notes that the watch
/// has something to look at, then wakes the connection's task.
#[derive(Default)]
struct WatchWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WatchWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A request head that never became a request: hyper answered it itself (400, 431) or the
/// client left while sending it (499). The request path never saw it, so its log line and
/// count are written from here (`proxy::log::unfinished_head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnfinishedHead {
    pub(crate) status: u16,
    pub(crate) error: &'static str,
}

impl UnfinishedHead {
    /// What `err`, the connection's own error, says about a head under way. `busy`: a
    /// request was in flight, so the error belongs to it (its own line says 499).
    fn of(err: &(dyn std::error::Error + 'static), busy: bool) -> Option<Self> {
        let err = err.downcast_ref::<hyper::Error>()?;
        let (status, error) = if err.is_parse_too_large() {
            (431, "head-too-large")
        } else if err.is_parse() {
            (400, "bad-head")
        } else if err.is_incomplete_message() && !busy {
            (499, "client-gone")
        } else {
            return None;
        };
        Some(Self { status, error })
    }
}

/// Serves `conn` until it ends, shutting it down when it is silent, idle, or told to stop.
/// Returns the head hyper refused or the client abandoned, if that is how it ended. A
/// connection that sent nothing before `header_read_timeout` is not a request and gets no
/// line (a port scan or a TCP health check would flood the log).
pub(super) async fn watch_connection<C: Served>(
    conn: C,
    activity: Arc<Activity>,
    options: ServeOptions,
    mut stop: watch::Receiver<bool>,
) -> Option<UnfinishedHead> {
    let mut conn = pin!(conn);
    let wake = Arc::new(WatchWake::default());
    let watch_waker = Waker::from(wake.clone());
    // Ends when the shim stops, or when the sender is gone (the accept loop ended).
    let mut stopping = pin!(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    let first = options.header_read_timeout.min(options.keepalive_timeout);
    let mut timer = pin!(tokio::time::sleep_until(
        activity.accepted() + first.min(RELEASE_AFTER)
    ));
    let mut closing = false;
    let mut rest = Rest::Never;
    // The first poll looks at the watch, which registers its wakers.
    wake.woken.store(true, Ordering::Relaxed);
    poll_fn(|cx| {
        // Registered before `woken` is read, so a wake in between is not lost.
        wake.task.register(cx.waker());
        if !closing && wake.woken.swap(false, Ordering::AcqRel) {
            let mut watch_cx = Context::from_waker(&watch_waker);
            if stopping.as_mut().poll(&mut watch_cx).is_ready() {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            while !closing && timer.as_mut().poll(&mut watch_cx).is_ready() {
                match check(&activity, &options, rest) {
                    Check::Wait(next) => timer.as_mut().reset(next),
                    Check::Silent => {
                        tracing::debug!(
                            "Closed a connection that sent no complete request head in time."
                        );
                        return Poll::Ready(None);
                    }
                    Check::Idle => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    // The timer stays elapsed: the next turn of the loop re-arms it.
                    Check::Release(last_end) if activity.at_rest() => {
                        rest = if conn.as_mut().release() {
                            Rest::Released(last_end)
                        } else {
                            Rest::Unable
                        };
                    }
                    // A response still being written, or a request body being read.
                    Check::Release(_) => timer.as_mut().reset(Instant::now() + RELEASE_AFTER),
                }
            }
        }
        conn.as_mut().poll(cx).map(|result| {
            let err = result.err()?;
            tracing::debug!(error = %err, "Connection ended with an error.");
            UnfinishedHead::of(&*err, matches!(activity.phase(), Phase::Busy))
        })
    })
    .await
}
