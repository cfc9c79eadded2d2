//! Reports as HTML, Markdown, JUnit XML and an SVG timeline (placeholder until merged).

use super::report::Report;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// HTML.
    Html,
    /// Markdown.
    Markdown,
    /// JUnit XML.
    Junit,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            "md" | "markdown" => Ok(Self::Markdown),
            "junit" => Ok(Self::Junit),
            other => Err(format!("unknown format {other:?}")),
        }
    }
}

/// Renders.
#[must_use]
pub fn render(report: &Report, _format: Format) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}

impl Format {
    /// The HTTP `Content-Type` of this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Html => "text/html; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Junit => "application/xml; charset=utf-8",
        }
    }
}
