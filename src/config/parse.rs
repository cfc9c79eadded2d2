//! TOML text → `RawConfig`, section by section, so every section's errors are reported.

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Diagnostic;
use super::raw::RawConfig;

/// Parses `text`; a section that fails to deserialize is left at its default and reported.
pub(crate) fn parse(text: &str) -> (RawConfig, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (table, errors) = DeTable::parse_recoverable(text);
    diags.extend(errors.iter().map(|e| from_toml(e, 0..0)));
    let mut raw = RawConfig::default();
    if !errors.is_empty() {
        // A syntax error makes the rest unreliable; report only what the parser found.
        return (raw, diags);
    }
    for (key, value) in table.into_inner() {
        let key_span = key.span();
        let name: &str = key.get_ref();
        match name {
            "listen" => section(value, &mut raw.listen, &mut diags),
            "admin" => section(value, &mut raw.admin, &mut diags),
            "clock" => section(value, &mut raw.clock, &mut diags),
            "maintenance" => section(value, &mut raw.maintenance, &mut diags),
            "drill" => section(value, &mut raw.drill, &mut diags),
            "server" => section(value, &mut raw.server, &mut diags),
            "log" => section(value, &mut raw.log, &mut diags),
            "settle_method_drill" => section(value, &mut raw.settle_method_drill, &mut diags),
            "tls" => section(value, &mut raw.tls, &mut diags),
            "report" => section(value, &mut raw.report, &mut diags),
            "upstreams" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Table(upstreams) => {
                        for (name, value) in upstreams {
                            let span = name.span();
                            if let Some(u) = element(value, &mut diags) {
                                raw.upstreams.insert(name.get_ref().to_string(), (span, u));
                            }
                        }
                    }
                    _ => diags.push(Diagnostic::at(
                        span,
                        "`upstreams` must be a table of tables, e.g. [upstreams.api]",
                    )),
                }
            }
            "windows" => array(value, "windows", &mut raw.windows, &mut diags),
            "routes" => array(value, "routes", &mut raw.routes, &mut diags),
            other => diags.push(Diagnostic::at(
                key_span,
                format!(
                    "unknown section `{other}`, expected one of: {}",
                    section_names().join(", ")
                ),
            )),
        }
    }
    (raw, diags)
}

/// Top-level table names, from the same list `docs/config.md` is checked against.
fn section_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = super::keys::sections()
        .into_iter()
        .map(|(s, _)| {
            s.trim_matches(['[', ']'])
                .split('.')
                .next()
                .unwrap_or_default()
        })
        .collect();
    names.dedup();
    names
}

fn section<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    slot: &mut T,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(parsed) = element(value, diags) {
        *slot = parsed;
    }
}

fn array<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    name: &str,
    out: &mut Vec<T>,
    diags: &mut Vec<Diagnostic>,
) {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => {
            for item in items {
                if let Some(parsed) = element(item, diags) {
                    out.push(parsed);
                }
            }
        }
        _ => diags.push(Diagnostic::at(
            span,
            format!("`{name}` must be an array of tables, e.g. [[{name}]]"),
        )),
    }
}

fn element<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(value.into_deserializer()) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            diags.push(from_toml(&err, span));
            None
        }
    }
}

/// Turns a toml error into a diagnostic; `fallback` locates errors toml gives no span for.
fn from_toml(err: &toml::de::Error, fallback: std::ops::Range<usize>) -> Diagnostic {
    let message = err.message().trim().trim_end_matches('.').to_string();
    Diagnostic::at(err.span().unwrap_or(fallback), message)
}
