//! A plain-TCP client connection of the proxy, served by hyper's HTTP/1.1 or HTTP/2 (prior
//! knowledge) connection directly, with as little memory as hyper allows while it is idle.
//!
//! Why not hyper-util's `auto` connection, as over TLS and on the admin port: at 5,000 idle
//! keep-alive connections it cost 42 KiB of RSS each (bench/idle.sh; dhat, per connection:
//! the spawned task 24.9 KB, of which 12.4 KB the TLS branch and the rest `auto`'s enum of
//! both protocols and its builder held twice; hyper's read buffer 16 KiB, doubled because
//! `auto`'s 24-byte preface read is served to hyper alone and hyper then reserves 8 KiB
//! more; hyper's write buffer 8 KiB; its cached header map 1.2 KB). Here:
//! - the protocol is read with `MSG_PEEK`, so hyper's first read gets the whole head;
//! - nothing of hyper exists before the client sends its first bytes, and the hyper
//!   connection is boxed, so the task itself stays small;
//! - on HTTP/1.1, once the connection has rested a while between two requests (the watch
//!   decides when, `runtime/connection.rs`), hyper's connection is taken apart
//!   (`into_parts`): its read and write buffers, cached headers and dispatcher state are
//!   freed, and a new one is built when the socket is readable again. hyper itself keeps
//!   both 8 KiB buffers for the connection's life and offers no way to shrink them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::rt::ReadBufCursor;
use hyper::server::conn::{http1, http2};
use hyper::service::{HttpService, Service};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::connection::{BoxError, Served};
use crate::proxy::conn::{Activity, Exchange};

/// What an HTTP/2 client with prior knowledge sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// hyper's connection builders, configured once per listener.
pub(super) struct Protocols {
    pub(super) http1: http1::Builder,
    pub(super) http2: http2::Builder<TokioExecutor>,
}

/// The socket as hyper sees it: bytes an earlier hyper connection had read ahead come first,
/// and whether everything hyper wrote was flushed is noted in the connection's [`Activity`].
pub(super) struct Io {
    stream: TokioIo<TcpStream>,
    ahead: Option<Bytes>,
    activity: Arc<Activity>,
}

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(ahead) = self.ahead.as_mut() {
            let n = ahead.len().min(buf.remaining());
            buf.put_slice(&ahead[..n]);
            ahead.advance(n);
            if ahead.is_empty() {
                self.ahead = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

// hyper calls `poll_flush` only once its own write buffer is empty, so "flushed since the
// last write" means hyper holds nothing unwritten.
impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.activity.set_flushed(false);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.activity.set_flushed(false);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = ready!(Pin::new(&mut self.stream).poll_flush(cx));
        if flushed.is_ok() {
            self.activity.set_flushed(true);
        }
        Poll::Ready(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

enum State<S: HttpService<Incoming>> {
    /// Accepted; the protocol is not known yet.
    New(Io, S),
    /// HTTP/1.1 between two requests with no hyper connection: the socket and the service.
    Resting(Io, S),
    Http1(Box<http1::Connection<Io, S>>),
    Http2(Pin<Box<http2::Connection<Io, S, TokioExecutor>>>),
    Closed,
}

/// A plain-TCP client connection (see the module documentation).
pub(super) struct Plain<S: HttpService<Incoming>> {
    state: State<S>,
    protocols: Arc<Protocols>,
    activity: Arc<Activity>,
    /// The hyper connection was started after a release: to hyper it is a new connection, on
    /// which a graceful shutdown waits for the first request, even one not yet begun.
    restarted: bool,
}

impl<S: HttpService<Incoming>> Plain<S> {
    pub(super) fn new(
        stream: TcpStream,
        service: S,
        protocols: Arc<Protocols>,
        activity: Arc<Activity>,
    ) -> Self {
        let io = Io {
            stream: TokioIo::new(stream),
            ahead: None,
            activity: activity.clone(),
        };
        Self {
            state: State::New(io, service),
            protocols,
            activity,
            restarted: false,
        }
    }
}

/// What the first bytes say.
#[derive(Clone, Copy)]
enum Protocol {
    Eof,
    Http1,
    Http2,
}

/// Reads which protocol the client speaks, the way `auto` does (the 24-byte preface, or
/// HTTP/1.1), but with `MSG_PEEK`: nothing is taken from the socket unless the client sent a
/// preface in pieces (then what came is kept in `io.ahead`, since peeking again would find
/// the same bytes ready forever).
fn poll_protocol(io: &mut Io, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let stream = io.stream.inner_mut();
        let Some(ahead) = io.ahead.as_ref() else {
            let mut peeked = ReadBuf::new(&mut buf);
            let got = ready!(stream.poll_peek(cx, &mut peeked))?;
            if got == 0 {
                return Poll::Ready(Ok(Protocol::Eof));
            }
            if buf[..got] != PREFACE[..got] {
                return Poll::Ready(Ok(Protocol::Http1));
            }
            if got == PREFACE.len() {
                return Poll::Ready(Ok(Protocol::Http2));
            }
            // A partial preface: take it out, so that waiting for more does not wake at once.
            let taken = stream.try_read(&mut buf[..got])?;
            io.ahead = Some(Bytes::copy_from_slice(&buf[..taken]));
            continue;
        };
        let have = ahead.len();
        buf[..have].copy_from_slice(ahead);
        let mut read = ReadBuf::new(&mut buf[have..]);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
        let got = have + read.filled().len();
        io.ahead = Some(Bytes::copy_from_slice(&buf[..got]));
        // At EOF hyper gets the partial preface and answers it, as with `auto`.
        if got == have || buf[have..got] != PREFACE[have..got] {
            return Poll::Ready(Ok(Protocol::Http1));
        }
        if got == PREFACE.len() {
            return Poll::Ready(Ok(Protocol::Http2));
        }
    }
}

impl<S, B> Plain<S>
where
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Hands the socket to a new hyper connection for `protocol`.
    fn start(&mut self, protocol: Protocol) {
        let (State::New(io, service) | State::Resting(io, service)) =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            return;
        };
        self.state = match protocol {
            Protocol::Eof => State::Closed,
            Protocol::Http1 => {
                State::Http1(Box::new(self.protocols.http1.serve_connection(io, service)))
            }
            Protocol::Http2 => {
                State::Http2(Box::pin(self.protocols.http2.serve_connection(io, service)))
            }
        };
    }
}

impl<S, B> Future for Plain<S>
where
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Http1(conn) => return Pin::new(&mut **conn).poll(cx).map_err(Into::into),
                State::Http2(conn) => return conn.as_mut().poll(cx).map_err(Into::into),
                State::Closed => return Poll::Ready(Ok(())),
                State::New(io, _) => {
                    let protocol = ready!(poll_protocol(io, cx))?;
                    this.start(protocol);
                }
                State::Resting(io, _) => {
                    // hyper allocates its buffers as soon as it is polled: not before the
                    // client sends something.
                    if io.ahead.is_none() {
                        ready!(io.stream.inner().poll_read_ready(cx))?;
                    }
                    this.start(Protocol::Http1);
                }
            }
        }
    }
}

impl<S, B> Served for Plain<S>
where
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        let this = self.get_mut();
        match &mut this.state {
            // Between requests (a head may be partly received): close, as hyper does on a
            // connection it served before.
            State::Http1(_) if this.restarted && this.activity.at_rest() => {
                this.state = State::Closed;
            }
            State::Http1(conn) => Pin::new(&mut **conn).graceful_shutdown(),
            State::Http2(conn) => conn.as_mut().graceful_shutdown(),
            // Between requests: nothing to finish.
            State::New(..) | State::Resting(..) => this.state = State::Closed,
            State::Closed => {}
        }
    }

    fn release(self: Pin<&mut Self>) -> bool {
        let this = self.get_mut();
        match &this.state {
            State::Http1(_) => {
                let State::Http1(conn) = std::mem::replace(&mut this.state, State::Closed) else {
                    return false;
                };
                let parts = conn.into_parts();
                let mut io = parts.io;
                io.ahead = (!parts.read_buf.is_empty()).then_some(parts.read_buf);
                this.state = State::Resting(io, parts.service);
                this.restarted = true;
                true
            }
            State::Http2(_) => false,
            State::New(..) | State::Resting(..) | State::Closed => true,
        }
    }
}

/// The proxy's service as hyper calls it: each exchange is counted in the connection's
/// [`Activity`] until hyper drops its response body, so the watch knows when hyper is
/// between two messages. Costs two relaxed atomic adds and an `Arc` clone per request.
#[derive(Clone)]
pub(super) struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, B> Service<Request<Incoming>> for Counted<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let exchange = self.activity.exchange(!req.body().is_end_stream());
        CountedFuture {
            future: self.inner.call(req),
            exchange: Some(exchange),
        }
    }
}

pin_project! {
    /// The response future of [`Counted`].
    pub(super) struct CountedFuture<F> {
        #[pin]
        future: F,
        exchange: Option<Exchange>,
    }
}

impl<F, B, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.future.poll(cx));
        let exchange = this.exchange.take();
        Poll::Ready(response.map(|response| {
            response.map(|body| CountedBody {
                body,
                _exchange: exchange,
            })
        }))
    }
}

pin_project! {
    /// A response body that ends its exchange when hyper drops it.
    pub(super) struct CountedBody<B> {
        #[pin]
        body: B,
        _exchange: Option<Exchange>,
    }
}

impl<B: Body> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
