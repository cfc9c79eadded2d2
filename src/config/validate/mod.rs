//! `RawConfig` → [`Config`]: parse addresses, times, URLs and durations, resolve references,
//! and collect every problem instead of stopping at the first. One file per topic: the
//! process's own sections (`settings`), `maintenance`, `upstreams`, `windows`, `routes`,
//! `drills`; the value checks they share are in `values`.

mod drills;
mod maintenance;
mod report;
mod routes;
mod settings;
mod upstreams;
mod values;
mod windows;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use values::parse_time;
pub(crate) use windows::is_valid_service;

use super::error::Diagnostic;
use super::raw::RawConfig;
use super::{Config, EnvLookup};

/// Collects diagnostics while turning raw values into checked ones.
pub(super) struct Checker<'a> {
    pub(super) diags: &'a mut Vec<Diagnostic>,
    pub(super) base_dir: PathBuf,
}

/// Validates `raw`; returns `None` (with `diags` non-empty) when something is wrong.
pub(super) fn validate(
    path: &Path,
    raw: RawConfig,
    env: &EnvLookup,
    diags: &mut Vec<Diagnostic>,
) -> Option<Config> {
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut c = Checker { diags, base_dir };

    let listen = c.listen(&raw.listen);
    let tls = c.tls(&raw.tls, raw.listen.tls.as_ref(), &listen);
    let admin = c.admin(&raw.admin, listen.admin, raw.listen.admin.as_ref(), env);
    let clock = c.clock(&raw.clock);
    let maintenance = c.maintenance(&raw);
    let (upstreams, upstream_index) = c.upstreams(raw.upstreams);
    let (windows, recurring) = c.windows(&raw.windows, clock.timezone);
    let routes = c.routes(&raw.routes, &upstream_index);
    let drill = c.drill(&raw.drill);
    let server = c.server(&raw.server);
    let report = c.report(&raw.report);
    let settle_drill = c.settle_drill(&raw.settle_method_drill, &windows, &recurring);
    if raw.routes.is_empty() {
        c.err(
            0..0,
            "no [[routes]] defined: the shim would answer 404 to everything",
        );
    }

    let config = Config {
        path: path.to_owned(),
        digest: String::new(),
        listen,
        admin,
        clock,
        maintenance,
        upstreams,
        windows,
        recurring,
        routes,
        drill,
        server,
        log_format: raw.log.format.unwrap_or_default(),
        settle_drill,
        tls,
        report,
    };
    c.diags.is_empty().then_some(config)
}

impl Checker<'_> {
    pub(super) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic::at(span, message));
    }
}
