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

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;
use tokio::time::Instant;

use super::server::ServeOptions;
use crate::proxy::conn::{Activity, Phase};

/// What the watch decides when its timer fires.
enum Check {
    /// Nothing to do before `Instant`.
    Wait(Instant),
    /// No complete request head since the accept: drop it.
    Silent,
    /// No request in flight for `keepalive_timeout`: shut it down gracefully.
    Idle,
}

fn check(activity: &Activity, options: &ServeOptions) -> Check {
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
                // idle period at the latest.
                Check::Wait(deadline.min(now + idle_limit))
            };
        }
        Phase::Busy => return Check::Wait(now + idle_limit),
        Phase::IdleSince(last_end) => last_end + idle_limit,
    };
    if now >= deadline {
        Check::Idle
    } else {
        Check::Wait(deadline)
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

/// Serves `conn` until it ends, shutting it down when it is silent, idle, or told to stop.
pub(super) async fn watch_connection<C>(
    conn: C,
    activity: Arc<Activity>,
    options: ServeOptions,
    mut stop: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = pin!(conn);
    let wake = Arc::new(WatchWake::default());
    let watch_waker = Waker::from(wake.clone());
    // Ends when the shim stops, or when the sender is gone (the accept loop ended).
    let mut stopping = pin!(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    let mut timer = pin!(tokio::time::sleep_until(
        activity.accepted() + options.header_read_timeout.min(options.keepalive_timeout)
    ));
    let mut closing = false;
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
                match check(&activity, &options) {
                    Check::Wait(next) => timer.as_mut().reset(next),
                    Check::Silent => {
                        tracing::debug!(
                            "Closed a connection that sent no complete request head in time."
                        );
                        return Poll::Ready(());
                    }
                    Check::Idle => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
        conn.as_mut().poll(cx).map(|result| {
            if let Err(err) = result {
                tracing::debug!(error = %err, "Connection ended with an error.");
            }
        })
    })
    .await;
}
