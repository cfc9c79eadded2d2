//! Maintenance windows compiled into per-service timelines, so "is this service in maintenance
//! now?" is one binary search however many windows there are.

mod window;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

pub(crate) use window::{Recurring, Source, Window};

/// True when a window listing `covering` covers `service`: equal, or a dotted ancestor
/// (`webcollect` covers `webcollect.api` but not `webcollectx`).
#[must_use]
pub(crate) fn covers(covering: &str, service: &str) -> bool {
    service == covering
        || (service.len() > covering.len()
            && service.starts_with(covering)
            && service.as_bytes()[covering.len()] == b'.')
}

/// One stretch of time in which the set of active windows does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// The window shown to users: the earliest-starting active one (file order breaks ties).
    window: usize,
    /// End of the unbroken maintenance this segment belongs to (adjacent and overlapping
    /// windows chain); what Retry-After counts down to.
    until: DateTime<Utc>,
}

/// Maintenance as seen by one service: disjoint, sorted segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Timeline {
    segments: Vec<Segment>,
}

/// The window in force at an instant, for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Active {
    /// Index into the window list the timeline was built from.
    pub(crate) window: usize,
    /// When this service's maintenance ends (past chained windows).
    pub(crate) until: DateTime<Utc>,
}

impl Timeline {
    /// Compiles the windows that cover `service`. O(n log n) in the number of windows.
    #[must_use]
    pub(crate) fn build(windows: &[Window], service: &str) -> Self {
        Self::build_with(windows, |w| w.services.iter().any(|s| covers(s, service)))
    }

    /// Compiles the windows `select` picks.
    #[must_use]
    pub(crate) fn build_with(windows: &[Window], select: impl Fn(&Window) -> bool) -> Self {
        let relevant: Vec<usize> = windows
            .iter()
            .enumerate()
            .filter(|(_, w)| w.start < w.end && select(w))
            .map(|(i, _)| i)
            .collect();
        // Sweep over start (+) and end (-) events; the active set is ordered by (start, index).
        let mut events: Vec<(DateTime<Utc>, bool, usize)> = Vec::with_capacity(relevant.len() * 2);
        for &i in &relevant {
            events.push((windows[i].start, true, i));
            events.push((windows[i].end, false, i));
        }
        events.sort_unstable_by_key(|&(t, is_start, i)| (t, is_start, i));
        let mut active: BTreeSet<(DateTime<Utc>, usize)> = BTreeSet::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut k = 0;
        while k < events.len() {
            let t = events[k].0;
            while k < events.len() && events[k].0 == t {
                let (_, is_start, i) = events[k];
                if is_start {
                    active.insert((windows[i].start, i));
                } else {
                    active.remove(&(windows[i].start, i));
                }
                k += 1;
            }
            if let (Some(&(_, window)), Some(&(next, _, _))) = (active.first(), events.get(k)) {
                segments.push(Segment {
                    start: t,
                    end: next,
                    window,
                    until: next,
                });
            }
        }
        // Chain contiguous segments so each knows where its unbroken maintenance ends.
        let mut until = None;
        for seg in segments.iter_mut().rev() {
            match until {
                Some((start_of_next, end)) if start_of_next == seg.end => seg.until = end,
                _ => {}
            }
            until = Some((seg.start, seg.until));
        }
        Self { segments }
    }

    /// The window in force at `now`, if any. One binary search.
    #[must_use]
    pub(crate) fn active_at(&self, now: DateTime<Utc>) -> Option<Active> {
        let i = self.segments.partition_point(|s| s.end <= now);
        self.segments
            .get(i)
            .filter(|s| s.start <= now)
            .map(|s| Active {
                window: s.window,
                until: s.until,
            })
    }

    /// The first instant after `now` at which this service enters or leaves maintenance.
    #[must_use]
    pub(crate) fn next_transition(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = self.segments.partition_point(|s| s.end <= now);
        let seg = self.segments.get(i)?;
        if seg.start > now {
            Some(seg.start)
        } else {
            Some(seg.until)
        }
    }

    /// The window that starts next after `now` (for display when a drill forces maintenance
    /// outside any window).
    #[must_use]
    pub(crate) fn next_window(&self, now: DateTime<Utc>) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.start <= now);
        self.segments.get(i).map(|s| s.window)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn window(id: &str, start: &str, end: &str, services: &[&str]) -> Window {
        Window {
            id: id.into(),
            title: id.into(),
            start: t(start),
            end: t(end),
            services: services.iter().map(|s| (*s).to_string()).collect(),
            source: crate::schedule::Source::Config,
        }
    }

    fn notice() -> Vec<Window> {
        vec![window(
            "2020-04-20",
            "2020-04-20T02:00:00+09:00",
            "2020-04-20T06:00:00+09:00",
            &["webcollect", "atobarai.credit_card"],
        )]
    }

    #[test]
    fn boundaries_are_half_open() {
        let tl = Timeline::build(&notice(), "webcollect.api");
        let ms = TimeDelta::milliseconds(1);
        assert_eq!(tl.active_at(t("2020-04-20T02:00:00+09:00") - ms), None);
        let active = tl.active_at(t("2020-04-20T02:00:00+09:00")).unwrap();
        assert_eq!(active.until, t("2020-04-20T06:00:00+09:00"));
        assert!(tl.active_at(t("2020-04-20T06:00:00+09:00") - ms).is_some());
        assert_eq!(tl.active_at(t("2020-04-20T06:00:00+09:00")), None);
    }

    #[test]
    fn services_match_by_dotted_prefix() {
        assert!(covers("webcollect", "webcollect"));
        assert!(covers("webcollect", "webcollect.api"));
        assert!(covers("webcollect.api", "webcollect.api.credit"));
        assert!(!covers("webcollect", "webcollectx"));
        assert!(!covers("webcollect.api", "webcollect"));
        let now = t("2020-04-20T03:00:00+09:00");
        assert!(
            Timeline::build(&notice(), "atobarai.credit_card")
                .active_at(now)
                .is_some()
        );
        assert!(
            Timeline::build(&notice(), "atobarai.au_easy")
                .active_at(now)
                .is_none()
        );
        assert!(
            Timeline::build(&notice(), "atobarai")
                .active_at(now)
                .is_none()
        );
    }

    #[test]
    fn adjacent_and_overlapping_windows_chain() {
        let windows = vec![
            window("a", "2020-04-20T02:00:00Z", "2020-04-20T03:00:00Z", &["s"]),
            window("b", "2020-04-20T03:00:00Z", "2020-04-20T04:00:00Z", &["s"]),
            window("c", "2020-04-20T03:30:00Z", "2020-04-20T05:00:00Z", &["s"]),
            window("d", "2020-04-20T07:00:00Z", "2020-04-20T08:00:00Z", &["s"]),
        ];
        let tl = Timeline::build(&windows, "s");
        let a = tl.active_at(t("2020-04-20T02:30:00Z")).unwrap();
        assert_eq!((a.window, a.until), (0, t("2020-04-20T05:00:00Z")));
        let b = tl.active_at(t("2020-04-20T03:00:00Z")).unwrap();
        assert_eq!(b.window, 1);
        // During the overlap the earlier-starting window is shown.
        assert_eq!(tl.active_at(t("2020-04-20T03:45:00Z")).unwrap().window, 1);
        assert_eq!(tl.active_at(t("2020-04-20T04:30:00Z")).unwrap().window, 2);
        assert_eq!(tl.active_at(t("2020-04-20T06:00:00Z")), None);
        assert_eq!(
            tl.next_transition(t("2020-04-20T01:00:00Z")),
            Some(t("2020-04-20T02:00:00Z"))
        );
        assert_eq!(
            tl.next_transition(t("2020-04-20T02:10:00Z")),
            Some(t("2020-04-20T05:00:00Z"))
        );
        assert_eq!(
            tl.next_transition(t("2020-04-20T05:00:00Z")),
            Some(t("2020-04-20T07:00:00Z"))
        );
        assert_eq!(tl.next_transition(t("2020-04-20T08:00:00Z")), None);
        assert_eq!(tl.next_window(t("2020-04-20T05:00:00Z")), Some(3));
    }

    #[test]
    fn many_windows_compile_to_sorted_disjoint_segments() {
        let base = t("2020-01-01T00:00:00Z");
        let windows: Vec<Window> = (0..10_000)
            .map(|i| Window {
                id: i.to_string(),
                title: String::new(),
                start: base + TimeDelta::hours(i * 2),
                end: base + TimeDelta::hours(i * 2 + 1),
                services: vec!["s".into()],
                source: crate::schedule::Source::Config,
            })
            .collect();
        let tl = Timeline::build(&windows, "s");
        assert_eq!(tl.segments.len(), 10_000);
        let probe = base + TimeDelta::hours(2 * 7_777) + TimeDelta::minutes(30);
        assert_eq!(tl.active_at(probe).unwrap().window, 7_777);
        assert_eq!(tl.active_at(probe + TimeDelta::hours(1)), None);
    }
}
