//! The value checks every section shares: addresses, byte counts, counts, durations, times,
//! status codes, networks, origins. Each reports its problem at the value's span and returns a
//! usable default, so checking goes on and every problem is found in one pass.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use http::StatusCode;
use ipnet::IpNet;
use toml::Spanned;

use super::Checker;
use crate::config::Origin;
use crate::config::parse_duration;
use crate::config::raw::Str;

impl Checker<'_> {
    pub(super) fn addr(&mut self, value: Option<&Str>, default: &str) -> SocketAddr {
        let fallback = || {
            default
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        let Some(value) = value else {
            return fallback();
        };
        value.get_ref().parse().unwrap_or_else(|_| {
            self.err(
                value.span(),
                format!(
                    "invalid listen address {:?}: expected IP:PORT such as \"0.0.0.0:8080\"",
                    value.get_ref()
                ),
            );
            fallback()
        })
    }

    /// `[admin] allowed_origins`: each a `scheme://host[:port]` origin.
    pub(super) fn origins(&mut self, values: Option<&[Str]>) -> Vec<Origin> {
        values
            .unwrap_or_default()
            .iter()
            .filter_map(|value| {
                let origin = Origin::parse(value.get_ref());
                if origin.is_none() {
                    self.err(
                        value.span(),
                        format!(
                            "invalid origin {:?}: expected http:// or https:// with a host and \
                             an optional port, nothing after it, such as \"https://shim-admin.example\"",
                            value.get_ref()
                        ),
                    );
                }
                origin
            })
            .collect()
    }

    /// A byte count of at least `min`.
    pub(super) fn bytes(
        &mut self,
        value: Option<&Spanned<i64>>,
        default: usize,
        min: usize,
    ) -> usize {
        let Some(value) = value else {
            return default;
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| *n >= min)
            .unwrap_or_else(|| {
                self.err(
                    value.span(),
                    format!("must be a number of bytes, at least {min}"),
                );
                default
            })
    }

    /// A positive count (connections), at most a million.
    pub(super) fn count(&mut self, value: Option<&Spanned<i64>>, default: usize) -> usize {
        let Some(value) = value else {
            return default;
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .unwrap_or_else(|| {
                self.err(value.span(), "must be a whole number from 1 to 1000000");
                default
            })
    }

    pub(in crate::config) fn duration(
        &mut self,
        value: Option<&Str>,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        parse_duration(value.get_ref()).unwrap_or_else(|msg| {
            self.err(value.span(), msg);
            default
        })
    }

    /// An RFC 3339 time, or `YYYY-MM-DD HH:MM[:SS]` read in `tz`; strings or bare TOML datetimes.
    pub(super) fn time(&mut self, value: &Spanned<toml::Value>, tz: Tz) -> Option<DateTime<Utc>> {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => {
                self.err(
                    value.span(),
                    format!("expected a time, found {}", other.type_str()),
                );
                return None;
            }
        };
        match parse_time(&text, tz) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.err(value.span(), msg);
                None
            }
        }
    }

    pub(super) fn status(
        &mut self,
        value: Option<&Spanned<i64>>,
        default: StatusCode,
    ) -> StatusCode {
        let Some(value) = value else {
            return default;
        };
        u16::try_from(*value.get_ref())
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| {
                self.err(value.span(), "status must be between 200 and 599");
                default
            })
    }

    pub(super) fn networks(&mut self, raw: &[Str]) -> Vec<IpNet> {
        raw.iter()
            .filter_map(|n| {
                let text = n.get_ref();
                let parsed = text
                    .parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
                match parsed {
                    Ok(net) => Some(net.trunc()),
                    Err(_) => {
                        self.err(n.span(), format!("invalid network {text:?}: expected CIDR such as \"192.0.2.0/24\" or an IP address"));
                        None
                    }
                }
            })
            .collect()
    }
}

/// Parses RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` (also with `T`) read in `tz`.
///
/// # Errors
/// A lowercase message, also for local times that a DST change skips or repeats.
pub fn parse_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    let formats = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ];
    let naive = formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!(
                "invalid time {text:?}: expected RFC 3339 (\"2020-04-20T02:00:00+09:00\") or \
                 \"YYYY-MM-DD HH:MM[:SS]\" in the configured time zone"
            )
        })?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.to_utc()),
        LocalResult::Ambiguous(..) => Err(format!(
            "time {text:?} happens twice in {tz} (daylight saving ends); write it with an offset"
        )),
        LocalResult::None => Err(format!(
            "time {text:?} does not exist in {tz} (daylight saving skips it); write it with an offset"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsetless_times_read_in_the_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let want = DateTime::parse_from_rfc3339("2020-04-20T02:00:00+09:00")
            .unwrap()
            .to_utc();
        assert_eq!(parse_time("2020-04-20 02:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-20 02:00:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-20T02:00:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-19T17:00:00Z", tokyo), Ok(want));
    }

    #[test]
    fn dst_gaps_and_folds_are_errors() {
        let ny = chrono_tz::America::New_York;
        assert!(
            parse_time("2020-03-08 02:30", ny)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            parse_time("2020-11-01 01:30", ny)
                .unwrap_err()
                .contains("happens twice")
        );
    }
}
