//! A body bounded in the time between its frames: `server.body_read_timeout`. The timer
//! is armed only when the body has nothing to give: tower-http's `TimeoutBody`, used here
//! before, armed a timer on every poll, before looking at the body, so a 300-byte form
//! that arrived with its head registered and removed two timers (callgrind: most of the
//! cost a form POST adds to a GET).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::response::BoxError;

/// The body did not give a frame within `server.body_read_timeout` of waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body stalled")
    }
}

impl std::error::Error for Stalled {}

pin_project! {
    /// `body`, failing with [`Stalled`] when a wait for its next frame passes `timeout`
    /// (never, without one).
    pub(crate) struct StallTimeout<B> {
        #[pin]
        body: B,
        timeout: Option<Duration>,
        // Armed while a wait is under way; kept between waits, and reset, so a streaming
        // upload makes one timer, not one per frame. Boxed: most bodies never arm it, and
        // every move of the request upstream (through the layers and hyper's client
        // channel) would otherwise carry the timer's room too.
        sleep: Option<Pin<Box<Sleep>>>,
        waiting: bool,
    }
}

impl<B> StallTimeout<B> {
    pub(crate) fn new(body: B, timeout: Option<Duration>) -> Self {
        Self {
            body,
            timeout,
            sleep: None,
            waiting: false,
        }
    }
}

impl<B> Body for StallTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            *this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(timeout) = *this.timeout else {
            return Poll::Pending;
        };
        // The clock is read only when a wait starts, not at every poll during one.
        let deadline = || super::deadline(Instant::now(), timeout);
        let sleep = match this.sleep {
            None => this
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline()))),
            Some(sleep) => {
                if !*this.waiting {
                    sleep.as_mut().reset(deadline());
                }
                sleep
            }
        };
        *this.waiting = true;
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(Stalled))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    /// A body that gives one frame, then nothing ever.
    struct OneThenStall(Option<Bytes>);

    impl Body for OneThenStall {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_at_once_arms_no_timer_and_a_stall_fails_after_the_timeout() {
        let mut body = Box::pin(StallTimeout::new(
            OneThenStall(Some(Bytes::from_static(b"a=1"))),
            Some(Duration::from_secs(5)),
        ));
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "a=1");
        assert!(body.sleep.is_none(), "no timer for a frame that was there");
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<Stalled>());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    /// A body fed by a channel; it ends when the sender is dropped.
    struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_gets_the_whole_timeout() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut body = Box::pin(StallTimeout::new(Fed(rx), Some(Duration::from_secs(5))));
        let feed = tokio::spawn(async move {
            // Three frames 4 s apart: 12 s in all, each wait under the 5 s bound.
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                tx.send(Bytes::from_static(b"x")).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(6)).await;
        });
        for _ in 0..3 {
            body.frame().await.unwrap().unwrap();
        }
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<Stalled>());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        feed.abort();
    }
}
