//! Whether every worker serves merchant traffic: what `/readyz` answers. A worker marks
//! itself serving just before its accept loop runs and stopped the moment that loop is
//! over (shutdown, a listener it cannot use, a runtime it cannot build, a panic), so a
//! Kubernetes readiness probe takes the pod out of its Service while any worker is not
//! accepting. Workers never restart: a stopped worker stays stopped.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The workers' states, set by the workers and read by `/readyz`.
#[derive(Debug, Default)]
pub struct Readiness {
    /// `None` until the workers are started.
    workers: Mutex<Option<Vec<State>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Starting,
    Serving,
    Stopped(String),
}

/// Why the shim is not ready (the body of a 503 from `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The workers have not been started (before [`crate::Shim::run`]).
    #[error("the workers have not been started")]
    NotStarted,
    /// Worker `index` (of `of`) has not reached its accept loop yet.
    #[error("worker {index} of {of} has not started")]
    Starting {
        /// The worker.
        index: usize,
        /// How many workers there are.
        of: usize,
    },
    /// Worker `index` stopped serving, for `reason`.
    #[error("worker {index} stopped: {reason}")]
    Stopped {
        /// The worker.
        index: usize,
        /// What ended it, e.g. "shutting down".
        reason: String,
    },
}

impl Readiness {
    /// `Ok` when every worker serves; otherwise the first stopped worker (the more lasting
    /// cause), else the first one still starting.
    ///
    /// # Errors
    /// When a worker is not serving, or none was started.
    pub fn check(&self) -> Result<(), NotReady> {
        let workers = self.lock();
        let Some(workers) = workers.as_ref() else {
            return Err(NotReady::NotStarted);
        };
        let stopped = workers
            .iter()
            .enumerate()
            .find_map(|(index, state)| match state {
                State::Stopped(reason) => Some(NotReady::Stopped {
                    index,
                    reason: reason.clone(),
                }),
                _ => None,
            });
        let starting = || {
            let index = workers.iter().position(|s| *s == State::Starting)?;
            Some(NotReady::Starting {
                index,
                of: workers.len(),
            })
        };
        match stopped.or_else(starting) {
            Some(not_ready) => Err(not_ready),
            None => Ok(()),
        }
    }

    /// `count` workers are being started; none serves yet.
    pub(crate) fn starting(&self, count: usize) {
        *self.lock() = Some(vec![State::Starting; count]);
    }

    /// Worker `index` is about to run its accept loop.
    pub(crate) fn serving(&self, index: usize) {
        self.set(index, |state| {
            if *state == State::Starting {
                *state = State::Serving;
            }
        });
    }

    /// Worker `index` no longer accepts. The first reason is kept: a later one (the thread
    /// ending after a shutdown) says less about why.
    pub(crate) fn stopped(&self, index: usize, reason: impl Into<String>) {
        self.set(index, |state| {
            if !matches!(state, State::Stopped(_)) {
                *state = State::Stopped(reason.into());
            }
        });
    }

    fn set(&self, index: usize, change: impl FnOnce(&mut State)) {
        if let Some(state) = self.lock().as_mut().and_then(|w| w.get_mut(index)) {
            change(state);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<State>>> {
        // Every change is one assignment: a panic elsewhere cannot leave it half-made.
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_worker_serves() {
        let readiness = Readiness::default();
        assert_eq!(readiness.check(), Err(NotReady::NotStarted));
        readiness.starting(2);
        readiness.serving(0);
        let err = readiness.check().unwrap_err();
        assert_eq!(err.to_string(), "worker 1 of 2 has not started");
        readiness.serving(1);
        assert_eq!(readiness.check(), Ok(()));
        readiness.stopped(0, "shutting down");
        readiness.stopped(0, "its accept loop ended");
        let err = readiness.check().unwrap_err();
        assert_eq!(err.to_string(), "worker 0 stopped: shutting down");
        // Stopped is final.
        readiness.serving(0);
        assert!(readiness.check().is_err());
    }

    #[test]
    fn a_stopped_worker_is_reported_before_a_starting_one() {
        let readiness = Readiness::default();
        readiness.starting(3);
        readiness.stopped(2, "cannot use the proxy listener");
        assert_eq!(
            readiness.check().unwrap_err().to_string(),
            "worker 2 stopped: cannot use the proxy listener"
        );
    }
}
