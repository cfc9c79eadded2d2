//! Reports as HTML, Markdown, JUnit XML and an SVG timeline (stub).
