//! At most one handshake-failure log line a second (issue 25, finding 11: 2,000 bad-SNI
//! handshakes wrote 2,000 WARN lines in 2.6 s). A scan or a misconfigured client then costs
//! one line a second, which says how many failures it stands for.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a handshake failure may be logged.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// When the last line was written, and how many were held back since.
#[derive(Debug)]
pub(crate) struct Throttle {
    state: Mutex<(Option<Instant>, u64)>,
}

/// Handshakes refused for their server name (no SNI, or one `[tls] hosts` does not list),
/// logged by the resolver.
pub(crate) static NAME_REFUSED: Throttle = Throttle::new();

/// Other failed handshakes (a client that does not trust the certificate, aborted
/// connects), logged by the listener. Separate from [`NAME_REFUSED`], because a refused name
/// also fails the handshake there, and would otherwise be counted twice.
pub(crate) static HANDSHAKE_FAILED: Throttle = Throttle::new();

impl Throttle {
    /// A throttle that lets the first line through.
    #[must_use]
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` when a line may be written now, with the number held back since
    /// the last one; `None` (counted) otherwise.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        // The state is two plain values, consistent after any panic: poisoning is harmless.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.0 {
            Some(last) if now.saturating_duration_since(last) < EVERY => {
                state.1 = state.1.saturating_add(1);
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_with_the_count_held_back() {
        let t = Throttle::new();
        let start = Instant::now();
        assert_eq!(t.admit(start), Some(0));
        for i in 0..1999 {
            assert_eq!(t.admit(start + Duration::from_micros(i)), None);
        }
        assert_eq!(t.admit(start + EVERY), Some(1999));
        assert_eq!(t.admit(start + EVERY), None);
    }
}
