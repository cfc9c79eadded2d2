//! Drill input rules, one set for every way a drill comes in: `POST /drills`, the fleet
//! CLI's `drills open|close`, and the restore of `drills.json`. The bounds keep open drills
//! from growing memory, `/status` and the state file without limit (issue 25, finding 3).
//!
//! Two layers: [`DrillRequest::parse`] and the `check_*` functions need nothing but the
//! input (the CLI has no config), `check_against` adds what the running config decides:
//! which services exist and the longest drill.

use std::time::Duration;

use chrono::TimeDelta;
use serde::Deserialize;

use crate::config::{Config, format_duration, is_valid_service, parse_duration};
use crate::schedule::covers;

/// Longest drill id, in characters (ids travel in `DELETE /drills/{id}` and log lines).
pub(crate) const MAX_ID_CHARS: usize = 64;
/// Longest drill title, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// Most services one drill names.
pub(crate) const MAX_SERVICES: usize = 32;
pub use crate::config::MAX_DRILL_DURATION as MAX_DURATION_CEILING;

/// What is wrong with a drill's input. Every variant is the caller's mistake (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not JSON of the expected shape.
    #[error(
        "expected JSON {{\"services\": [...], \"duration\": \"10m\", \"title\"?: \"...\", \"id\"?: \"...\"}}: {0}"
    )]
    Json(String),
    /// An id outside the alphabet or too long.
    #[error(
        "`id` must be 1 to {MAX_ID_CHARS} characters, each a letter, a digit, '-', '_', '.' or ':'"
    )]
    Id,
    /// A title too long or with control characters.
    #[error("`title` must be at most {MAX_TITLE_CHARS} characters, with no control characters")]
    Title,
    /// No service, or too many.
    #[error("`services` must name 1 to {MAX_SERVICES} services")]
    ServiceCount,
    /// A service name that is not dotted words.
    #[error(
        "invalid service name {0:?}: use dot-separated words of letters, digits, '_' or '-', such as webcollect.credit_card"
    )]
    ServiceName(String),
    /// A duration that does not parse, is zero, or is past the longest allowed.
    #[error("`duration` {0}")]
    Duration(String),
}

/// An ad-hoc drill request, checked by [`DrillRequest::parse`] (or built by the caller and
/// checked with [`DrillRequest::check`]).
#[derive(Debug, Clone)]
pub struct DrillRequest {
    /// Id; generated when absent.
    pub id: Option<String>,
    /// Dotted services covered.
    pub services: Vec<String>,
    /// How long it lasts from now (shim time).
    pub(crate) duration: TimeDelta,
    /// Human title.
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillBody {
    id: Option<String>,
    services: Vec<String>,
    duration: String,
    title: Option<String>,
}

impl DrillRequest {
    /// Parses and checks a `POST /drills` body: JSON `{"services": [...], "duration":
    /// "15m", "title"?: "...", "id"?: "..."}`.
    ///
    /// # Errors
    /// The first rule the body breaks.
    pub fn parse(body: &[u8]) -> Result<Self, InputError> {
        let body: DrillBody =
            serde_json::from_slice(body).map_err(|e| InputError::Json(e.to_string()))?;
        let duration = parse_drill_duration(&body.duration, MAX_DURATION_CEILING)?;
        let request = Self {
            id: body.id,
            services: body.services,
            duration: TimeDelta::from_std(duration)
                .map_err(|_| InputError::Duration("is too long".into()))?,
            title: body.title,
        };
        request.check()?;
        Ok(request)
    }

    /// Checks what needs no config: id, title, services, duration up to the ceiling.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn check(&self) -> Result<(), InputError> {
        if let Some(id) = &self.id {
            check_id(id)?;
        }
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        check_services(&self.services)?;
        let duration = self
            .duration
            .to_std()
            .map_err(|_| InputError::Duration("must be positive".into()))?;
        check_duration(duration, MAX_DURATION_CEILING)
    }
}

/// An id: 1 to `MAX_ID_CHARS` letters, digits, `-`, `_`, `.` or `:`, so it needs no
/// escaping in a URL path, a log line or a terminal.
///
/// # Errors
/// [`InputError::Id`].
pub fn check_id(id: &str) -> Result<(), InputError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if !id.is_empty() && id.len() <= MAX_ID_CHARS && id.chars().all(safe) {
        Ok(())
    } else {
        Err(InputError::Id)
    }
}

/// A title: at most `MAX_TITLE_CHARS` characters, none of them a control character (no
/// escape sequences for an operator's terminal, no line breaks in a one-line listing).
///
/// # Errors
/// [`InputError::Title`].
pub fn check_title(title: &str) -> Result<(), InputError> {
    if title.chars().count() <= MAX_TITLE_CHARS && !title.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(InputError::Title)
    }
}

/// Services: 1 to `MAX_SERVICES` valid dotted names.
///
/// # Errors
/// [`InputError::ServiceCount`] or [`InputError::ServiceName`].
pub fn check_services(services: &[String]) -> Result<(), InputError> {
    if services.is_empty() || services.len() > MAX_SERVICES {
        return Err(InputError::ServiceCount);
    }
    match services.iter().find(|s| !is_valid_service(s)) {
        Some(bad) => Err(InputError::ServiceName(bad.clone())),
        None => Ok(()),
    }
}

/// A duration from 1 s to `max`.
///
/// # Errors
/// [`InputError::Duration`].
pub(crate) fn check_duration(duration: Duration, max: Duration) -> Result<(), InputError> {
    if duration < Duration::from_secs(1) || duration > max {
        return Err(InputError::Duration(format!(
            "must be from 1s to {}",
            format_duration(TimeDelta::from_std(max).unwrap_or(TimeDelta::MAX))
        )));
    }
    Ok(())
}

/// Parses a duration (`15m`, `1h30m`) and checks it with `check_duration`.
///
/// # Errors
/// [`InputError::Duration`].
pub fn parse_drill_duration(text: &str, max: Duration) -> Result<Duration, InputError> {
    let duration = parse_duration(text).map_err(InputError::Duration)?;
    check_duration(duration, max)?;
    Ok(duration)
}

/// True when a drill naming `service` can change what some route answers, or names part of
/// one: `service` covers a route's service (it is that service or a dotted ancestor, such as
/// `webcollect` for a route of `webcollect.api`), or a route's service covers it (it is a
/// dotted descendant, such as `webcollect.credit_card` for a route of `webcollect`, which is
/// what the console offers for that family). Any other name is a typo or another config's
/// service, and is refused.
#[must_use]
pub(crate) fn known_service(config: &Config, service: &str) -> bool {
    config
        .routes
        .iter()
        .any(|r| covers(service, &r.service) || covers(&r.service, service))
}

/// What the running config decides about a drill: its services exist ([`known_service`])
/// and it is no longer than `[admin] max_drill_duration`.
///
/// # Errors
/// A message naming the service or the limit.
pub(crate) fn check_against(
    config: &Config,
    services: &[String],
    duration: TimeDelta,
) -> Result<(), ConfigRefusal> {
    if let Some(unknown) = services.iter().find(|s| !known_service(config, s)) {
        return Err(ConfigRefusal::UnknownService(unknown.clone()));
    }
    let max = config.admin.max_drill_duration;
    match duration.to_std() {
        Ok(d) if d <= max => Ok(()),
        _ => Err(ConfigRefusal::TooLong(format_duration(
            TimeDelta::from_std(max).unwrap_or(TimeDelta::MAX),
        ))),
    }
}

/// Why the running config refuses a drill.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConfigRefusal {
    /// No route's service is, covers or is covered by it.
    #[error(
        "service {0:?} is not in the config: no route's service is, covers or is covered by it"
    )]
    UnknownService(String),
    /// Longer than `[admin] max_drill_duration`.
    #[error("`duration` must be at most {0} ([admin] max_drill_duration)")]
    TooLong(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_titles_services_and_durations_are_bounded() {
        assert!(check_id("fleet-drill_1.a:b").is_ok());
        assert!(check_id(&"a".repeat(64)).is_ok());
        for bad in ["", "a/b", "a b", "a%2F", "a?b", "\u{1b}[2J", "ドリル"] {
            assert_eq!(check_id(bad), Err(InputError::Id), "{bad:?}");
        }
        assert_eq!(check_id(&"a".repeat(65)), Err(InputError::Id));
        assert!(check_title(&"訓".repeat(200)).is_ok());
        assert_eq!(check_title(&"訓".repeat(201)), Err(InputError::Title));
        for bad in ["a\u{1b}]0;x\u{7}", "a\rb", "a\nb", "\u{9b}"] {
            assert_eq!(check_title(bad), Err(InputError::Title), "{bad:?}");
        }
        assert_eq!(check_services(&[]), Err(InputError::ServiceCount));
        assert_eq!(
            check_services(&vec!["a".to_string(); 33]),
            Err(InputError::ServiceCount)
        );
        assert!(check_services(&["webcollect.api".to_string()]).is_ok());
        let max = MAX_DURATION_CEILING;
        assert!(parse_drill_duration("7d", max).is_ok());
        assert!(parse_drill_duration("7d1s", max).is_err());
        assert!(parse_drill_duration("0s", max).is_err());
        assert!(parse_drill_duration("soon", max).is_err());
    }

    #[test]
    fn one_parse_for_api_bodies() {
        let ok = DrillRequest::parse(
            br#"{"id": "qa-1", "services": ["webcollect.api"], "duration": "10m", "title": "QA"}"#,
        )
        .unwrap();
        assert_eq!(ok.duration, TimeDelta::minutes(10));
        for bad in [
            &br#"{"services": ["webcollect.api"], "duration": "10m", "extra": 1}"#[..],
            br#"{"id": "a/b", "services": ["webcollect.api"], "duration": "10m"}"#,
            br#"{"services": ["a..b"], "duration": "10m"}"#,
            br#"{"services": ["a"], "duration": "8d"}"#,
            b"not json",
        ] {
            assert!(
                DrillRequest::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
