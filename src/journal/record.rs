//! One journalled request, as stored and as exchanged between replicas for a fleet report.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::capture::Entry;
use super::fields;
use crate::config::Config;

/// A text field that many records share (the replica, a route, a decision…): the writer
/// hands each record the same allocation, where a `String` each cost it seven
/// allocations per record, and their frees when the record goes (callgrind).
pub(crate) type Text = Arc<str>;

/// What one request on a journalled route did. Identifiers and outcomes only: no body, no
/// query string, no header value but the request id (see [`super::fields`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// When it arrived, by the real clock.
    pub(crate) real_time: DateTime<Utc>,
    /// When it arrived, by the shim's (drill) clock: what windows are decided on.
    pub(crate) drill_time: DateTime<Utc>,
    /// The replica that served it (its `Via` pseudonym).
    pub(crate) replica: Text,
    /// `X-Request-Id` (the client's, else the shim's).
    pub(crate) request_id: String,
    /// Route id.
    pub(crate) route: Text,
    /// The route's service.
    pub(crate) service: Text,
    /// The route's kind: `api`, `page`, `token_js` or `notification`.
    pub(crate) kind: Text,
    /// Request method.
    pub(crate) method: Text,
    /// `function_div` of the form body, if any.
    pub(crate) function_div: Option<String>,
    /// `trader_code` of the form body, if any.
    pub(crate) trader_code: Option<String>,
    /// `order_no` of the form body, if any.
    pub(crate) order_no: Option<String>,
    /// The decision: `pass`, `maintenance`, `drill-maintenance`, `would-maintain`,
    /// `bypass`, `drill-pass`.
    pub(crate) decision: Text,
    /// The window or drill that was in force for the route's service, if any.
    pub(crate) window: Option<Text>,
    /// Why forwarding failed, if it did (`upstream-timeout`, …; `client-gone` for 499).
    pub(crate) error: Option<Text>,
    /// Status the client got (499 when it left before the answer).
    pub(crate) status: u16,
    /// The upstream answer's `returnCode`, for XML answers.
    pub(crate) return_code: Option<String>,
    /// The upstream answer's `errorCode`, for XML answers.
    pub(crate) error_code: Option<String>,
    /// From arrival to the answer's head, in microseconds.
    pub(crate) latency_us: u64,
    /// Whether the request reached an upstream.
    pub(crate) reached: bool,
}

impl Record {
    /// Identifies the request across replicas and repeated answers: a fleet report counts
    /// each key once.
    #[must_use]
    pub(crate) fn key(&self) -> (&str, &str, DateTime<Utc>) {
        (&self.replica, &self.request_id, self.real_time)
    }

    /// A successful exchange with the gateway: it reached the upstream and got a 2xx, and
    /// for an XML API answer `returnCode` 0.
    #[must_use]
    pub(crate) fn succeeded(&self) -> bool {
        self.reached
            && (200..300).contains(&self.status)
            && match &*self.kind {
                "api" => self.return_code.as_deref() == Some("0"),
                _ => self.return_code.as_deref().is_none_or(|c| c == "0"),
            }
    }
}

/// The writer thread's texts: each record made from an [`Entry`] shares them, so that it
/// allocates its request id (and the form's fields, if any) and nothing else.
#[derive(Debug)]
pub(crate) struct Texts {
    replica: Text,
    /// The config the last record was decided on, with its routes' ids, services and kinds.
    routes: Option<Routes>,
    methods: Vec<(http::Method, Text)>,
    decisions: Labels,
    errors: Labels,
}

impl Texts {
    /// Texts for the records of `replica`.
    #[must_use]
    pub(crate) fn new(replica: &str) -> Self {
        Self {
            replica: replica.into(),
            routes: None,
            methods: Vec::new(),
            decisions: Labels::default(),
            errors: Labels::default(),
        }
    }

    /// A finished capture as a record: route names resolved, strings made (on the writer's
    /// thread, never the request path's).
    pub(crate) fn record(&mut self, entry: Entry) -> Record {
        let Entry {
            head,
            end,
            form,
            codes: (return_code, error_code),
        } = entry;
        let (route, service, kind) = self.route(&head.config, head.route);
        let text = |v: Option<fields::Value>| v.map(|v| v.as_str().to_string());
        Record {
            real_time: head.real_time,
            drill_time: head.drill_time,
            replica: self.replica.clone(),
            request_id: head.request_id.as_str().to_string(),
            route,
            service,
            kind,
            method: self.method(&head.method),
            function_div: text(form.function_div),
            trader_code: text(form.trader_code),
            order_no: text(form.order_no),
            decision: self.decisions.get(head.decision),
            window: head.window,
            error: end.error.map(|e| self.errors.get(e)),
            status: end.status,
            return_code: return_code.map(|c| c.as_str().to_string()),
            error_code: error_code.map(|c| c.as_str().to_string()),
            latency_us: end.latency_us,
            reached: end.reached,
        }
    }

    /// Route `index`'s id, service and kind in `config`.
    fn route(&mut self, config: &Arc<Config>, index: usize) -> (Text, Text, Text) {
        let routes = match &mut self.routes {
            Some(routes) if Arc::ptr_eq(&routes.config, config) => routes,
            slot => slot.insert(Routes {
                config: config.clone(),
                names: config
                    .routes
                    .iter()
                    .map(|r| {
                        (
                            Text::from(r.id.as_str()),
                            Text::from(r.service.as_str()),
                            Text::from(r.kind.as_str()),
                        )
                    })
                    .collect(),
            }),
        };
        routes.names[index].clone()
    }

    /// The shared text of `method`. Methods come from clients: a few distinct ones are
    /// kept, the rest made each time.
    fn method(&mut self, method: &http::Method) -> Text {
        // Comparing standard methods compares no text.
        if let Some((_, text)) = self.methods.iter().find(|(m, _)| m == method) {
            return text.clone();
        }
        let text = Text::from(method.as_str());
        if self.methods.len() < 16 {
            self.methods.push((method.clone(), text.clone()));
        }
        text
    }
}

/// A config's route ids, services and kinds, as texts.
#[derive(Debug)]
struct Routes {
    config: Arc<Config>,
    names: Vec<(Text, Text, Text)>,
}

/// The shared texts of labels the shim itself names (decisions, failures): a handful of
/// `'static` strings, found by address before their texts are compared.
#[derive(Debug, Default)]
struct Labels(Vec<(&'static str, Text)>);

impl Labels {
    fn get(&mut self, label: &'static str) -> Text {
        // The same text may sit at another address (the linker may or may not merge them).
        if let Some((_, text)) = self
            .0
            .iter()
            .find(|(l, _)| std::ptr::eq(*l, label) || *l == label)
        {
            return text.clone();
        }
        let text = Text::from(label);
        self.0.push((label, text.clone()));
        text
    }
}
