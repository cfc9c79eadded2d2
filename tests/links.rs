//! The project's Markdown links resolve: every relative link in README.md, CONTRIBUTING.md,
//! docs/*.md, bench/RESULTS.md and bench/history/*.md names an existing file, and its
//! `#anchor` a heading of the target (GitHub's slugs). The README links every one of those
//! documents but the dated runs, which bench/RESULTS.md links.
//!
//! A small scan rather than a Markdown crate: inline links and images (`[text](dest)`,
//! `![alt](dest)`) and reference definitions (`[label]: dest`), outside fenced code blocks
//! and code spans. Anchors are ATX and setext headings and `<a id|name="…">`. Links with a
//! scheme (`https:`, `mailto:`) are not followed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::support::fresh_dir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The documents whose links are checked, and which the README must link.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut docs = vec![
        root.join("README.md"),
        root.join("CONTRIBUTING.md"),
        root.join("bench/RESULTS.md"),
    ];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    docs.extend(in_docs);
    docs
}

/// `text` with fenced code blocks and code spans blanked out (every byte but `\n` becomes a
/// space), so offsets and line numbers stay those of the file.
fn prose(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    // Fenced code blocks: a fence may be indented (inside a list item); it closes with the
    // same character, at least as many times.
    let mut fence: Option<(u8, usize)> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let trimmed = line.trim_start();
        let run = |c: u8| trimmed.bytes().take_while(|&b| b == c).count();
        let blank = match fence {
            Some((c, n)) => {
                if run(c) >= n && trimmed[run(c)..].trim().is_empty() {
                    fence = None;
                }
                true
            }
            None => {
                for c in [b'`', b'~'] {
                    // A backtick fence's info string has no backticks: "```x```" is a span.
                    if run(c) >= 3 && !(c == b'`' && trimmed[run(c)..].contains('`')) {
                        fence = Some((c, run(c)));
                    }
                }
                fence.is_some()
            }
        };
        if blank {
            blank_out(&mut out[start..end]);
        }
        start = end;
    }
    // Code spans: a run of N backticks up to the next run of exactly N, within a paragraph.
    let mut i = 0;
    while i < out.len() {
        if out[i] != b'`' {
            i += 1;
            continue;
        }
        let n = out[i..].iter().take_while(|&&b| b == b'`').count();
        let mut j = i + n;
        let mut close = None;
        while j < out.len() {
            if ends_paragraph(&out[j..]) {
                break;
            }
            if out[j] == b'`' {
                let m = out[j..].iter().take_while(|&&b| b == b'`').count();
                if m == n {
                    close = Some(j + m);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                blank_out(&mut out[i..end]);
                i = end;
            }
            // An unmatched run is literal backticks.
            None => i += n,
        }
    }
    out
}

/// Whether `rest` starts with a line break followed by a blank line (or the end).
fn ends_paragraph(rest: &[u8]) -> bool {
    rest.first() == Some(&b'\n')
        && rest[1..]
            .iter()
            .take_while(|&&b| b != b'\n')
            .all(|&b| b == b' ' || b == b'\t')
}

fn blank_out(bytes: &mut [u8]) {
    for b in bytes.iter_mut().filter(|b| **b != b'\n') {
        *b = b' ';
    }
}

/// Every link destination in `text`, with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let prose = prose(text);
    let line_of = |at: usize| prose[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let mut found = Vec::new();
    // Inline links and images: `](` then the destination, `<…>` or up to a space or the
    // `)` that balances it.
    let mut at = 0;
    while let Some(pos) = find(&prose[at..], b"](") {
        let start = at + pos + 2;
        let rest = &text[start..];
        let dest = if let Some(angled) = rest.strip_prefix('<') {
            angled.split('>').next().unwrap_or("")
        } else {
            let mut depth = 0usize;
            let end = rest
                .char_indices()
                .find(|&(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    c => c.is_whitespace(),
                })
                .map_or(rest.len(), |(i, _)| i);
            &rest[..end]
        };
        found.push((line_of(start), dest.to_string()));
        at = start;
    }
    // Reference definitions: `[label]: dest` at the start of a line.
    let mut offset = 0;
    for line in String::from_utf8_lossy(&prose).split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some(close) = trimmed.find(']')
            && trimmed[close..].starts_with("]:")
        {
            let from = offset + (line.len() - trimmed.len()) + close + 2;
            if let Some(dest) = text[from..].split_whitespace().next() {
                found.push((line_of(from), dest.to_string()));
            }
        }
        offset += line.len();
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// GitHub's anchor for a heading: the rendered text lower-cased, without punctuation and
/// symbols, each space a hyphen.
fn slug(heading: &str) -> String {
    // A link in a heading renders as its text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a document defines: heading slugs (repeats get `-1`, `-2`, … as on
/// GitHub) and explicit `<a id="…">` / `<a name="…">`.
fn anchors(text: &str) -> HashSet<String> {
    let prose = String::from_utf8(prose(text)).unwrap();
    let raw: Vec<&str> = text.lines().collect();
    let lines: Vec<&str> = prose.lines().collect();
    let mut headings = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if indent <= 3
            && (1..=6).contains(&hashes)
            && (trimmed.len() == hashes || trimmed.as_bytes()[hashes] == b' ')
        {
            // Code spans were blanked in `lines`; the heading's text comes from the file.
            let text = raw[i].trim()[hashes..].trim();
            // An optional closing run of `#`, after a space.
            let unclosed = text.trim_end_matches('#');
            let text = if unclosed.is_empty() || unclosed.ends_with(' ') {
                unclosed
            } else {
                text
            };
            headings.push(text.to_string());
        } else if indent <= 3
            && i > 0
            && !trimmed.is_empty()
            && (trimmed.bytes().all(|b| b == b'=') || trimmed.bytes().all(|b| b == b'-'))
        {
            let above = lines[i - 1].trim();
            let is_paragraph = !above.is_empty()
                && !above.starts_with(['#', '|', '-', '*', '+', '>'])
                && !above.chars().next().is_some_and(|c| c.is_ascii_digit());
            if is_paragraph {
                headings.push(raw[i - 1].trim().to_string());
            }
        }
    }
    let mut found = HashSet::new();
    for heading in headings {
        let base = slug(&heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while found.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        found.insert(anchor);
    }
    for attr in ["<a id=\"", "<a name=\""] {
        for (pos, _) in prose.match_indices(attr) {
            let value = &prose[pos + attr.len()..];
            found.insert(value.split('"').next().unwrap_or("").to_string());
        }
    }
    found
}

/// Decodes `%XX` escapes, as a browser does before asking for the file.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Where a relative link in `doc` points, and its anchor; `None` for a link with a scheme.
fn target(doc: &Path, dest: &str) -> Option<(PathBuf, Option<String>)> {
    let scheme = dest
        .find(':')
        .is_some_and(|colon| !dest[..colon].contains(['/', '?', '#']));
    if scheme || dest.starts_with("//") {
        return None;
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((path, anchor)) => (path, Some(percent_decode(anchor))),
        None => (dest, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let file = if path.is_empty() {
        doc.to_path_buf()
    } else {
        doc.parent().unwrap().join(percent_decode(path))
    };
    Some((file, anchor))
}

/// What is wrong with the links of `doc`, one line each.
fn broken_links(doc: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    let mut broken = Vec::new();
    for (line, dest) in links(&text) {
        let Some((file, anchor)) = target(doc, &dest) else {
            continue;
        };
        let shown = doc.strip_prefix(ROOT).unwrap_or(doc);
        let at = format!("{}:{line}: ({dest})", shown.display());
        if dest.is_empty() {
            broken.push(format!("{at} empty link"));
        } else if !file.exists() {
            broken.push(format!("{at} no such file {}", file.display()));
        } else if let Some(anchor) = anchor
            && file.extension().is_some_and(|ext| ext == "md")
        {
            let defined = anchors(&std::fs::read_to_string(&file).unwrap());
            if !defined.contains(&anchor) {
                let mut known: Vec<_> = defined.into_iter().collect();
                known.sort();
                broken.push(format!(
                    "{at} no heading #{anchor} in {} (it has: {})",
                    file.display(),
                    known.join(", ")
                ));
            }
        }
    }
    broken
}

/// The dated benchmark runs under bench/history/, which bench/RESULTS.md links.
fn bench_history() -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("bench/history"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    runs.sort();
    runs
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut docs = documents();
    assert!(
        docs.len() >= 8,
        "expected the README and the docs, found {docs:?}"
    );
    docs.extend(bench_history());
    let broken: Vec<String> = docs.iter().flat_map(|doc| broken_links(doc)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_links_every_document() {
    let readme = Path::new(ROOT).join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let linked: HashSet<PathBuf> = links(&text)
        .into_iter()
        .filter_map(|(_, dest)| target(&readme, &dest))
        .filter_map(|(file, _)| file.canonicalize().ok())
        .collect();
    for doc in documents().iter().filter(|doc| **doc != readme) {
        assert!(
            linked.contains(&doc.canonicalize().unwrap()),
            "README.md does not link {}",
            doc.display()
        );
    }
}

#[test]
fn the_results_link_every_dated_run() {
    let results = Path::new(ROOT).join("bench/RESULTS.md");
    let text = std::fs::read_to_string(&results).unwrap();
    let linked: HashSet<PathBuf> = links(&text)
        .into_iter()
        .filter_map(|(_, dest)| target(&results, &dest))
        .filter_map(|(file, _)| file.canonicalize().ok())
        .collect();
    let runs = bench_history();
    assert!(!runs.is_empty(), "no runs under bench/history/");
    for run in runs {
        assert!(
            linked.contains(&run.canonicalize().unwrap()),
            "bench/RESULTS.md does not link {}",
            run.display()
        );
    }
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Pointing a merchant at the shim"),
        "pointing-a-merchant-at-the-shim"
    );
    assert_eq!(
        slug("`Z01000000` or `Z010000000`?"),
        "z01000000-or-z010000000"
    );
    assert_eq!(slug("`[maintenance.contact]`"), "maintenancecontact");
    assert_eq!(
        slug("Plan a drill: `check` and `explain`"),
        "plan-a-drill-check-and-explain"
    );
    assert_eq!(
        slug("A fleet-wide drill (anchor = a minute from now)"),
        "a-fleet-wide-drill-anchor--a-minute-from-now"
    );
    assert_eq!(
        slug("The settleMethod 14 drill"),
        "the-settlemethod-14-drill"
    );
    assert_eq!(
        slug("See [the config](config.md) first"),
        "see-the-config-first"
    );
    assert_eq!(slug("時計・Clock「現在」"), "時計clock現在");
}

/// The scan finds a broken file, a broken anchor and a missing heading, and is not fooled by
/// code blocks, code spans, external links or repeated headings.
#[test]
fn the_link_check_finds_what_is_broken() {
    let dir = fresh_dir("links");
    std::fs::create_dir(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("docs/other.md"),
        "# Other\n\n## Usage\n\n## Usage\n\nSetext title\n---\n\n<a id=\"custom\"></a>\n",
    )
    .unwrap();
    let doc = dir.join("README.md");
    std::fs::write(&doc, SAMPLE).unwrap();
    let broken = broken_links(&doc);
    let dests: Vec<&str> = broken
        .iter()
        .map(|line| line.split(&['(', ')'][..]).nth(1).unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "docs/missing.md",
            "docs/other.md#usage-2",
            "#nowhere",
            "#not-a-heading",
            "#after-span",
            "docs/gone.md"
        ],
        "{broken:#?}"
    );
    assert!(broken[0].contains("README.md:6: "), "{}", broken[0]);
    assert!(broken[4].contains("README.md:25: "), "{}", broken[4]);
    assert!(broken[5].contains("README.md:27: "), "{}", broken[5]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A document for [`the_link_check_finds_what_is_broken`]: six broken links (lines 6, 6,
/// 7, 7, 25 and 27), the rest fine or not links at all.
const SAMPLE: &str = r#"# Title

[ok](docs/other.md), [ok](docs/other.md#usage-1), ![ok](docs/other.md#setext-title),
[ok](docs/other.md#custom), [ok](#title), [ok](https://example.com/missing.md),
[ok](<docs/other.md>), [ok](docs/other.md "a title"), [ok](docs/), [ok](docs/other%2Emd).
[bad file](docs/missing.md) and [bad anchor](docs/other.md#usage-2)
and [bad own anchor](#nowhere), [bad](#not-a-heading).

```sh
echo '[not a link](nowhere.md)'
# not a heading
```

- in a list:

  ~~~
  [not a link](nowhere.md)
  ~~~

Inline `[code](nowhere.md)` and ``a `[code](nowhere.md)` span`` are not links, nor is a
span `over a
line [code](nowhere.md)`.

An unclosed ` backtick does not hide [ok](#title), and a span at the start of a line
```[code](nowhere.md)``` opens no fence: [bad](#after-span).

[ref]: docs/gone.md
"#;
