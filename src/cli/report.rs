//! `webcollect-shim report`: one drill's, window's or range's evidence, merged over every
//! replica named by `--admin`, as JSON, HTML, Markdown or JUnit; exit 1 when a verdict fails.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use webcollect_shim::journal::fleet::merge;
use webcollect_shim::journal::render::{self, Format};

use super::escape::{escape, escape_lines};
use super::fleet::{self, FleetArgs};

/// `report`'s arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").args(["window", "drill", "from"])))]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// A `[[windows]]` id (a recurring window's occurrence in force or last started).
    #[arg(long, value_name = "ID")]
    window: Option<String>,
    /// With --window: the occurrence covering or last started before this time.
    #[arg(long, value_name = "TIME", requires = "window")]
    at: Option<String>,
    /// An ad-hoc drill's id (the last one opened with it).
    #[arg(long, value_name = "ID")]
    drill: Option<String>,
    /// Start of a time range (RFC 3339, or YYYY-MM-DD HH:MM in clock.timezone), drill time.
    #[arg(long, value_name = "TIME", requires = "to")]
    from: Option<String>,
    /// End of the time range.
    #[arg(long, value_name = "TIME", requires = "from")]
    to: Option<String>,
    /// Output format: json, html, md or junit.
    #[arg(long, default_value = "md", value_parser = parse_format)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
        .map_err(|e: render::UnknownFormat| e.to_string())
}

/// Runs `report`: `Ok(true)` when every verdict passed.
pub(crate) fn report(args: &ReportArgs) -> anyhow::Result<bool> {
    let mut query = vec!["records=1".to_string()];
    let mut param = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            let value: String =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            query.push(format!("{key}={value}"));
        }
    };
    param("window", &args.window);
    param("at", &args.at);
    param("drill", &args.drill);
    param("from", &args.from);
    param("to", &args.to);
    let answers = fleet::fetch(&args.fleet, &format!("/report?{}", query.join("&")))?;
    for (name, answer) in &answers {
        if let Err(err) = answer {
            // What a replica sent never reaches the terminal raw (escape sequences, CR).
            let err = escape(err);
            eprintln!("webcollect-shim: replica {name} failed: {err}");
        }
    }
    let report = merge(answers).map_err(anyhow::Error::msg)?;
    let text = render::render(&report, args.format);
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(escape_lines(&text).as_bytes())?,
    }
    let failed: Vec<&str> = report.failed().map(|v| v.name.as_str()).collect();
    if !failed.is_empty() {
        let failed = escape(&failed.join(", "));
        eprintln!("webcollect-shim: verdict(s) failed: {failed}");
    }
    Ok(failed.is_empty())
}
