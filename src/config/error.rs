//! Configuration errors: every problem found, each printed as `PATH:LINE:COLUMN: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a configuration file, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    /// Byte range in the file; `None` when the problem has no position (e.g. unreadable file).
    pub(crate) span: Option<Range<usize>>,
    /// Lowercase message without trailing punctuation.
    pub(crate) message: String,
}

impl Diagnostic {
    pub(crate) fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span: Some(span),
            message: message.into(),
        }
    }
}

/// Every problem found while loading a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    path: PathBuf,
    /// `(line, column, message)`, 1-based, sorted by position.
    located: Vec<(Option<(usize, usize)>, String)>,
}

impl ConfigError {
    pub(crate) fn new(path: &Path, text: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        diagnostics.dedup();
        let located = diagnostics
            .into_iter()
            .map(|d| (d.span.map(|s| line_column(text, s.start)), d.message))
            .collect();
        Self {
            path: path.to_owned(),
            located,
        }
    }

    /// The file the errors are in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Each error as `PATH:LINE:COLUMN: message` (or `PATH: message` without a position).
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        let path = self.path.display();
        self.located.iter().map(move |(pos, msg)| match pos {
            Some((line, col)) => format!("{path}:{line}:{col}: {msg}"),
            None => format!("{path}: {msg}"),
        })
    }

    /// How many errors were found.
    #[must_use]
    pub fn len(&self) -> usize {
        self.located.len()
    }

    /// Always false: an error holds at least one problem.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.located.is_empty()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "a = 1\ntitle = \"メンテ\" x\n";
        let offset = text.find('x').unwrap();
        assert_eq!(line_column(text, offset), (2, 15));
        assert_eq!(line_column(text, 0), (1, 1));
    }
}
