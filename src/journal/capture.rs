//! One request's record while it is under way: created at the decision, fed by the taps on
//! the request and answer bodies (the first 8 KiB of each, as they stream past: nothing
//! waits for them), given its outcome by the access log's one writer, and sent to the
//! journal's queue when the last of them lets go of it.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Method};

use super::Journal;
use crate::config::Config;

/// How much of each body is read.
pub const PREFIX: usize = 8 * 1024;

/// The start of a body, as the chunks that streamed past (no copy).
#[derive(Debug, Default)]
pub struct Prefix {
    chunks: Vec<Bytes>,
    len: usize,
    /// More followed what was kept.
    cut: bool,
}

impl Prefix {
    fn push(&mut self, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        let room = PREFIX - self.len;
        if data.len() > room {
            self.cut = true;
        }
        if room > 0 {
            let take = room.min(data.len());
            self.chunks.push(data.slice(..take));
            self.len += take;
        }
    }

    /// The bytes kept, and whether the body ended within them.
    #[must_use]
    pub fn into_bytes(self) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        (out, !self.cut)
    }
}

/// What is known when the decision is made.
#[derive(Debug)]
pub struct Head {
    /// The config the request was decided on (route names are resolved off the request path).
    pub config: Arc<Config>,
    /// Route index.
    pub route: usize,
    /// Real time of arrival.
    pub real_time: DateTime<Utc>,
    /// Drill time of arrival.
    pub drill_time: DateTime<Utc>,
    /// `X-Request-Id`.
    pub request_id: Option<HeaderValue>,
    /// Method.
    pub method: Method,
    /// The decision's label.
    pub decision: &'static str,
    /// The window or drill in force for the route's service, if any.
    pub window: Option<String>,
    /// Whether the request is on its way upstream.
    pub forwarded: bool,
    /// Whether the request body is a form worth reading.
    pub form: bool,
    /// Whether the answer is worth reading (an API route's XML).
    pub answer: bool,
}

/// How the request ended, as the access log wrote it.
#[derive(Debug, Clone, Copy, Default)]
pub struct End {
    /// Status the client got.
    pub status: u16,
    /// Failure label, if any.
    pub error: Option<&'static str>,
    /// Microseconds to the answer's head.
    pub latency_us: u64,
    /// Whether it reached the upstream.
    pub reached: bool,
}

#[derive(Debug, Default)]
struct Taps {
    request: Prefix,
    answer: Prefix,
    end: Option<End>,
}

/// A record under way. Cheap to share: the taps and the access log each hold an `Arc`.
#[derive(Debug)]
pub struct Capture {
    journal: Journal,
    head: Option<Head>,
    taps: Mutex<Taps>,
}

/// A finished capture, queued for the writer thread (which parses the bodies' starts).
#[derive(Debug)]
pub struct Entry {
    /// What the decision knew.
    pub head: Head,
    /// How it ended.
    pub end: End,
    /// The request body's start, if it was a form.
    pub request: Prefix,
    /// The answer's start, if it was read.
    pub answer: Prefix,
}

impl Capture {
    /// A capture that `journal` receives when the last holder drops it.
    #[must_use]
    pub fn new(journal: Journal, head: Head) -> Arc<Self> {
        Arc::new(Self {
            journal,
            head: Some(head),
            taps: Mutex::default(),
        })
    }

    fn taps(&self) -> std::sync::MutexGuard<'_, Taps> {
        self.taps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the request body should be tapped.
    #[must_use]
    pub fn wants_request(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.form)
    }

    /// Whether the answer body should be tapped.
    #[must_use]
    pub fn wants_answer(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.answer)
    }

    /// Whether the request was forwarded.
    #[must_use]
    pub fn forwarded(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.forwarded)
    }

    /// A chunk of the request body streamed past.
    pub fn request_data(&self, data: &Bytes) {
        self.taps().request.push(data);
    }

    /// A chunk of the answer streamed past.
    pub fn answer_data(&self, data: &Bytes) {
        self.taps().answer.push(data);
    }

    /// The outcome, from the access log (the first one counts).
    pub fn end(&self, end: End) {
        self.taps().end.get_or_insert(end);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let Some(head) = self.head.take() else { return };
        let taps = std::mem::take(self.taps.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.journal.submit(Entry {
            head,
            // Never ended: nothing wrote an outcome (the stack was dropped mid-way).
            end: taps.end.unwrap_or(End {
                status: 499,
                error: Some("client-gone"),
                ..End::default()
            }),
            request: taps.request,
            answer: taps.answer,
        });
    }
}
