//! Errors and their causes: printing the chain (the one way every log line and message
//! does it) and asking what caused one.

use std::error::Error;
use std::fmt;

/// Displays an error and each of its sources, `outer: inner: innermost`.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// True when `err` or one of its sources is an `E` (linkerd's `is_caused_by`).
#[must_use]
pub(crate) fn caused_by<E: Error + 'static>(err: &(dyn Error + 'static)) -> bool {
    cause::<E>(err).is_some()
}

/// The first of `err` and its sources that is an `E`.
#[must_use]
pub(crate) fn cause<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        cause = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn prints_every_cause_once() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(Chain(&err).to_string(), "outer: inner");
    }
}
