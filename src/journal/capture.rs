//! One request's record while it is under way: created at the decision, fed by the taps on
//! the request and answer bodies (the first 8 KiB of each, as they stream past: nothing
//! waits for them), given its outcome by the access log's one writer, and sent to the
//! journal's queue when the last of them lets go of it.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::Method;

use super::Journal;
use super::fields::{self, Code, FormIds, Ident};
use crate::config::Config;

/// How much of each body is read.
pub(crate) const PREFIX: usize = 8 * 1024;

/// The start of a body, as the chunks that streamed past (no copy; a body that comes in one
/// frame, as a form usually does, takes no allocation either).
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    first: Option<Bytes>,
    more: Vec<Bytes>,
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
            let chunk = data.slice(..take);
            if self.first.is_none() {
                self.first = Some(chunk);
            } else {
                self.more.push(chunk);
            }
            self.len += take;
        }
    }

    /// The bytes kept (contiguous), and whether the body ended within them.
    fn bytes(&self) -> (Cow<'_, [u8]>, bool) {
        let first = self.first.as_deref().unwrap_or_default();
        if self.more.is_empty() {
            return (Cow::Borrowed(first), !self.cut);
        }
        let mut out = Vec::with_capacity(self.len);
        out.extend_from_slice(first);
        for chunk in &self.more {
            out.extend_from_slice(chunk);
        }
        (Cow::Owned(out), !self.cut)
    }
}

/// What is known when the decision is made.
#[derive(Debug)]
pub(crate) struct Head {
    /// The config the request was decided on (route names are resolved off the request path).
    pub(crate) config: Arc<Config>,
    /// Route index.
    pub(crate) route: usize,
    /// Real time of arrival.
    pub(crate) real_time: DateTime<Utc>,
    /// Drill time of arrival.
    pub(crate) drill_time: DateTime<Utc>,
    /// `X-Request-Id`.
    pub(crate) request_id: Ident<64>,
    /// Method.
    pub(crate) method: Method,
    /// The decision's label.
    pub(crate) decision: &'static str,
    /// The window or drill in force for the route's service, if any.
    pub(crate) window: Option<Arc<str>>,
    /// Whether the request is on its way upstream.
    pub(crate) forwarded: bool,
    /// Whether the request body is a form worth reading.
    pub(crate) form: bool,
    /// Whether the answer is worth reading (an API route's XML).
    pub(crate) answer: bool,
}

/// How the request ended, as the access log wrote it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct End {
    /// Status the client got.
    pub(crate) status: u16,
    /// Failure label, if any.
    pub(crate) error: Option<&'static str>,
    /// Microseconds to the answer's head.
    pub(crate) latency_us: u64,
    /// Whether it reached the upstream.
    pub(crate) reached: bool,
}

#[derive(Debug, Default)]
struct Taps {
    request: Prefix,
    answer: Prefix,
    end: Option<End>,
}

/// A record under way. Cheap to share: the taps and the access log each hold an `Arc`.
#[derive(Debug)]
pub(crate) struct Capture {
    journal: Journal,
    head: Option<Head>,
    taps: Mutex<Taps>,
}

/// A finished capture, queued for the writer thread. The bodies' starts were read when the
/// request ended and are gone: a queued entry holds no buffer of the request path, and
/// nothing in it was allocated there (but the config's and window id's shared counts).
#[derive(Debug)]
pub(crate) struct Entry {
    /// What the decision knew.
    pub(crate) head: Head,
    /// How it ended.
    pub(crate) end: End,
    /// The kept fields of the request's form.
    pub(crate) form: FormIds,
    /// The upstream answer's `returnCode` and `errorCode`.
    pub(crate) codes: (Option<Code>, Option<Code>),
}

impl Capture {
    /// A capture that `journal` receives when the last holder drops it.
    #[must_use]
    pub(crate) fn new(journal: Journal, head: Head) -> Arc<Self> {
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
    pub(crate) fn wants_request(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.form)
    }

    /// Whether the answer body should be tapped.
    #[must_use]
    pub(crate) fn wants_answer(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.answer)
    }

    /// Whether the request was forwarded.
    #[must_use]
    pub(crate) fn forwarded(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.forwarded)
    }

    /// A chunk of the request body streamed past.
    pub(crate) fn request_data(&self, data: &Bytes) {
        self.taps().request.push(data);
    }

    /// A chunk of the answer streamed past.
    pub(crate) fn answer_data(&self, data: &Bytes) {
        self.taps().answer.push(data);
    }

    /// The outcome, from the access log (the first one counts).
    pub(crate) fn end(&self, end: End) {
        self.taps().end.get_or_insert(end);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let Some(head) = self.head.take() else { return };
        // Read in place: the taps go with the capture (a request without a body has
        // nothing in them to move out).
        let taps = self.taps.get_mut().unwrap_or_else(PoisonError::into_inner);
        // Never ended: nothing wrote an outcome (the stack was dropped mid-way).
        let end = taps.end.unwrap_or(End {
            status: 499,
            error: Some("client-gone"),
            ..End::default()
        });
        let form = if head.form {
            let (bytes, complete) = taps.request.bytes();
            fields::form(&bytes, complete)
        } else {
            FormIds::default()
        };
        let codes = if head.answer && end.reached {
            fields::codes(&taps.answer.bytes().0)
        } else {
            (None, None)
        };
        self.journal.submit(Entry {
            head,
            end,
            form,
            codes,
        });
    }
}
