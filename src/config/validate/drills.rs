//! `[drill]` (the drill header, who may use it, bypasses) and `[settle_method_drill]`.

use http::HeaderName;

use super::Checker;
use crate::config::raw::{RawDrill, RawSettleDrill};
use crate::config::{Drill, SettleDrill, SettleWhen, TRADE_INFO_PATHS};
use crate::schedule::{Recurring, Window};

const DEFAULT_DRILL_HEADER: &str = "x-webcollect-shim-drill";

impl Checker<'_> {
    pub(super) fn drill(&mut self, raw: &RawDrill) -> Drill {
        let header = match &raw.header {
            None => HeaderName::from_static(DEFAULT_DRILL_HEADER),
            Some(h) => HeaderName::from_bytes(h.get_ref().to_ascii_lowercase().as_bytes())
                .unwrap_or_else(|_| {
                    self.err(h.span(), format!("invalid header name {:?}", h.get_ref()));
                    HeaderName::from_static(DEFAULT_DRILL_HEADER)
                }),
        };
        Drill {
            header,
            bypass_cidrs: self.networks(&raw.bypass_cidrs),
            trusted_proxies: self.networks(&raw.trusted_proxies),
            header_clients: raw.header_clients.as_deref().map(|n| self.networks(n)),
        }
    }

    pub(super) fn settle_drill(
        &mut self,
        raw: &RawSettleDrill,
        windows: &[Window],
        recurring: &[Recurring],
    ) -> SettleDrill {
        let value = match &raw.value {
            None => "14".to_string(),
            Some(v) => {
                let text = v.get_ref();
                if text.is_empty() || text.len() > 3 || !text.chars().all(|c| c.is_ascii_digit()) {
                    self.err(v.span(), format!("invalid settleMethod value {text:?}: use the code's digits, e.g. \"14\""));
                }
                text.clone()
            }
        };
        let paths = match &raw.paths {
            None => TRADE_INFO_PATHS.iter().map(|p| (*p).to_string()).collect(),
            Some(paths) => {
                paths.iter().for_each(|p| self.route_path(p));
                paths.iter().map(|p| p.get_ref().clone()).collect()
            }
        };
        let when = raw.when.unwrap_or_default();
        let ids: Vec<String> = raw
            .windows
            .iter()
            .flatten()
            .map(|w| w.get_ref().clone())
            .collect();
        for w in raw.windows.iter().flatten() {
            let known = windows.iter().any(|k| &k.id == w.get_ref())
                || recurring.iter().any(|k| &k.id == w.get_ref());
            if !known {
                self.err(
                    w.span(),
                    format!(
                        "unknown window {:?} (settle_method_drill.windows lists [[windows]] ids)",
                        w.get_ref()
                    ),
                );
            }
        }
        if when == SettleWhen::InWindows && ids.is_empty() {
            self.err(
                0..0,
                "settle_method_drill: `when = \"in_windows\"` needs `windows = [...]` (window ids)",
            );
        }
        let max_body = match &raw.max_body {
            None => 1 << 20,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    self.err(v.span(), "`max_body` must be a positive number of bytes");
                    1 << 20
                }),
        };
        SettleDrill {
            when,
            value,
            paths,
            windows: ids,
            max_body,
        }
    }
}
