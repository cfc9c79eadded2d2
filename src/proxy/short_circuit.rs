//! The decision as a layer, shaped like tower-http's `ValidateRequest`: a request in
//! maintenance (or one no route takes, or one refused) is answered here and never reaches
//! the layers below; any other goes on as a [`Forwarding`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::HeaderValue;
use http::header::EXPECT;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use pin_project_lite::pin_project;
use tower::Service;

use super::body::RequestBody;
use super::{Answer, Call, Decided, Forwarding, Outcome};
use crate::decide::{Action, Pass, RequestInfo, request_host};
use crate::journal::capture::Capture;
use crate::response::{self, Canned, X_WEBCOLLECT_SHIM};

/// Short-circuits or forwards each request, per [`crate::decide::action`].
#[derive(Debug, Clone)]
pub(crate) struct ShortCircuit<S>(pub S);

impl<S> Service<Call> for ShortCircuit<S>
where
    S: Service<Forwarding<RequestBody>, Response = Answer, Error = Infallible>,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let Call {
            mut req,
            id,
            view,
            now,
            conn,
        } = call;
        let snapshot = &view.loaded.snapshot;
        let config = &snapshot.config;
        let action = crate::decide::action(
            snapshot,
            RequestInfo {
                method: req.method(),
                path: req.uri().path(),
                headers: req.headers(),
                peer: conn.peer.ip(),
                // A TLS client that sent no Host (HTTP/1.0) still named the host in SNI. Only
                // routes with a `host` read it, so without them it is not looked up.
                host: if snapshot.router.by_host() {
                    request_host(req.uri(), req.headers()).or(conn.server_name.as_deref())
                } else {
                    None
                },
                mark: &view.shared.via,
            },
            now,
        );
        let outcome = Outcome::default();
        let capture = view.shared.journal.begin(snapshot, action, &req, &id, now);
        let canned = match action {
            Action::Loop => response::loop_detected(),
            Action::Refuse(refusal) => refusal.answer(),
            Action::NoRoute => response::no_route(),
            Action::Maintain { route, maintain } => {
                view.maintenance_answer(route, maintain, req.uri().path(), now)
            }
            Action::Forward {
                route,
                why,
                rewrite,
                overridden,
                canonical,
                drilled,
            } => {
                // The drill header is for the shim; the gateway never sees it. Nor a method
                // override: the decision was made on the method it names, and the upstream
                // must not act as if it were another.
                let headers = req.headers_mut();
                if drilled {
                    headers.remove(&config.drill.header);
                }
                if overridden {
                    for name in &crate::decide::OVERRIDES {
                        headers.remove(name);
                    }
                }
                let tap = capture.clone().filter(|c| c.wants_request());
                let future = self.0.call(Forwarding {
                    req,
                    view,
                    conn,
                    route,
                    rewrite,
                    tap,
                    canonical,
                });
                return ResponseFuture::new(
                    action,
                    capture,
                    State::Forward {
                        future,
                        report: matches!(why, Pass::WouldMaintain(_)),
                    },
                );
            }
        };
        let expects_continue = req
            .headers()
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let body = req.into_body();
        if body.is_end_stream() {
            let answer = Some(Answer::canned(canned, outcome));
            return ResponseFuture::new(action, capture, State::Answered { answer });
        }
        if expects_continue || matches!(action, Action::Refuse(_)) {
            // The answer is known now: do not invite (with `100 Continue`) or read a body
            // that would be thrown away. The client may still send it, so an HTTP/1
            // connection cannot carry another request: it closes.
            let mut answer = Answer::canned(canned, outcome);
            answer.close = true;
            let answer = Some(answer);
            return ResponseFuture::new(action, capture, State::Answered { answer });
        }
        let maintenance = &config.maintenance;
        let (limit, timeout) = (maintenance.drain_limit, maintenance.drain_timeout);
        let tap = capture.clone().filter(|c| c.wants_request());
        let future = Box::pin(drain_and_answer(
            Drain {
                body,
                limit,
                timeout,
                tap,
            },
            canned,
            outcome,
        ));
        ResponseFuture::new(action, capture, State::Draining { future })
    }
}

pin_project! {
    /// Response future of [`ShortCircuit`]: the decision, known as soon as the call returns, and
    /// the way to the answer.
    pub(crate) struct ResponseFuture<F> {
        action: Action,
        capture: Option<Arc<Capture>>,
        #[pin]
        state: State<F>,
    }
}

impl<F> ResponseFuture<F> {
    fn new(action: Action, capture: Option<Arc<Capture>>, state: State<F>) -> Self {
        Self {
            action,
            capture,
            state,
        }
    }
}

impl<F> Decided for ResponseFuture<F> {
    fn action(&self) -> Option<Action> {
        Some(self.action)
    }

    fn take_capture(&mut self) -> Option<Arc<Capture>> {
        self.capture.take()
    }
}

pin_project! {
    /// How [`ResponseFuture`] gets to its answer.
    #[project = Proj]
    enum State<F> {
        /// Answered without reading anything more.
        Answered { answer: Option<Answer> },
        /// Reading the request body before answering, so the connection stays usable.
        Draining { future: Pin<Box<dyn Future<Output = Answer> + Send>> },
        /// Forwarded.
        Forward {
            #[pin]
            future: F,
            report: bool,
        },
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Answer, Infallible>>,
{
    type Output = Result<Answer, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Answered { answer } => {
                Poll::Ready(Ok(answer.take().expect("future polled after completion")))
            }
            Proj::Draining { future } => future.as_mut().poll(cx).map(Ok),
            Proj::Forward { future, report } => {
                let Ok(mut answer) = ready!(future.poll(cx));
                if *report && answer.outcome.failure.is_none() {
                    answer.response.headers_mut().insert(
                        X_WEBCOLLECT_SHIM,
                        HeaderValue::from_static("would-maintain"),
                    );
                }
                Poll::Ready(Ok(answer))
            }
        }
    }
}

/// Reads and discards the request body (bounded in size and time) so an HTTP/1.1 connection
/// can carry the next request, then answers. If the body was not fully read, the connection
/// is closed after the answer instead.
async fn drain_and_answer(drain: Drain, canned: Canned, outcome: Outcome) -> Answer {
    let drained = drain.run().await;
    let mut answer = Answer::canned(canned, outcome);
    answer.close |= !drained;
    answer
}

/// A short-circuited request's body, to be read and thrown away.
struct Drain {
    body: RequestBody,
    /// At most this many bytes are read.
    limit: u64,
    /// For at most this long.
    timeout: Duration,
    /// The drill journal's capture, shown the body's start as it is read.
    tap: Option<Arc<Capture>>,
}

impl Drain {
    /// True when the whole body was read within the limits.
    async fn run(self) -> bool {
        let Self {
            mut body,
            limit,
            timeout,
            tap,
        } = self;
        let read = async {
            let mut seen: u64 = 0;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return false };
                if let Some(data) = frame.data_ref() {
                    if let Some(tap) = &tap {
                        tap.request_data(data);
                    }
                    seen += data.len() as u64;
                    if seen > limit {
                        return false;
                    }
                }
            }
            true
        };
        tokio::time::timeout(timeout, read).await.unwrap_or(false)
    }
}
