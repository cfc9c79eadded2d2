//! The report's timeline as a standalone SVG: stacked bars per bucket, the window shaded.

use super::*;

// ---------------------------------------------------------------------------------------
// Timeline SVG
// ---------------------------------------------------------------------------------------

/// The SVG's geometry, in user units (the page scales it to its width).
pub(super) const SVG_W: f64 = 960.0;
pub(super) const PLOT_LEFT: f64 = 56.0;
pub(super) const PLOT_RIGHT: f64 = 28.0;
pub(super) const PLOT_TOP: f64 = 44.0;
pub(super) const PLOT_H: f64 = 200.0;
pub(super) const FONT: &str =
    "'Noto Sans CJK JP', 'Noto Sans JP', 'Hiragino Kaku Gothic ProN', Meiryo, sans-serif";

/// Tick steps in seconds: the first that gives at most [`MAX_TICKS`] labels is used.
pub(super) const TICK_STEPS: [i64; 14] = [
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
];
pub(super) const MAX_TICKS: i64 = 12;

/// Past the longest of [`TICK_STEPS`] (spans of months): `seconds` rounded up to whole
/// days, so labels stay few and fall on midnights.
pub(super) fn whole_days(seconds: i64) -> i64 {
    (seconds.max(0) / 86_400 + 1) * 86_400
}

/// Two decimals: enough for a crisp chart, few enough to keep the file small, and the
/// same digits on every platform.
pub(super) fn num(v: f64) -> String {
    format!("{v:.2}")
}

/// Rough width of a label, to lay the legend out without a font engine: CJK glyphs are
/// about one em, Latin ones about 0.6.
pub(super) fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| if c.is_ascii() { 0.6 } else { 1.0 })
        .sum::<f64>()
        * size
}

/// A name for a bucket width: `1 min`, `2 h`.
pub(super) fn bucket_name(seconds: i64) -> String {
    duration(seconds.max(1))
}

/// Label instants, in Unix seconds: the shortest of [`TICK_STEPS`] that gives at most
/// [`MAX_TICKS`] labels over `seconds`, aligned on `t0`'s offset (a 15-minute step falls
/// on :00, :15, … of local time, not of UTC).
pub(super) fn tick_times(t0: &DateTime<FixedOffset>, seconds: i64) -> Vec<i64> {
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|s| seconds / s <= MAX_TICKS)
        .unwrap_or_else(|| whole_days(seconds / MAX_TICKS));
    let offset = i64::from(t0.offset().local_minus_utc());
    let local0 = t0.timestamp() + offset;
    let mut local = local0.div_euclid(step) * step;
    if local < local0 {
        local += step;
    }
    let mut ticks = Vec::new();
    while local <= local0 + seconds {
        ticks.push(local - offset);
        local += step;
    }
    ticks
}

/// A stacked-bar chart of [`Report::timeline`]: one `<g class="bar">` per bucket with
/// requests, stacked by decision in fixed colours, the report's window (or drill, or
/// range) shaded behind, `HH:MM` labels in the report's own offset, the highest bucket's
/// count on the y axis, a legend and a `<title>`. A standalone SVG document (it also
/// inlines into HTML); deterministic.
#[must_use]
pub(crate) fn timeline_svg(report: &Report) -> String {
    let tl = &report.timeline;
    let buckets = &tl.buckets;
    let width = tl.bucket_seconds.max(1);
    let n = buckets.len();
    let t0 = buckets.first().map_or(report.span.from, |b| b.start);
    let seconds = if n == 0 {
        (report.span.horizon - report.span.from).num_seconds()
    } else {
        n as i64 * width
    }
    .max(1);
    let plot_w = SVG_W - PLOT_LEFT - PLOT_RIGHT;
    let base = PLOT_TOP + PLOT_H;
    let x = |t: &DateTime<FixedOffset>| {
        let s = (*t - t0).num_milliseconds() as f64 / 1000.0;
        PLOT_LEFT + (s / seconds as f64).clamp(0.0, 1.0) * plot_w
    };
    let totals: Vec<u64> = buckets
        .iter()
        .map(|b| b.by_decision.values().sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let scale = max.max(1) as f64;
    let y = |count: u64| base - count as f64 / scale * PLOT_H;
    let subject = &report.subject;
    let (window_ja, window_en) = match subject.kind {
        SubjectKind::Window => ("メンテナンス枠", "window"),
        SubjectKind::Drill => ("ドリル", "drill"),
        SubjectKind::Range => ("対象期間", "range"),
    };

    let mut body = String::new();
    // Heading line.
    w!(
        body,
        "<text x=\"{}\" y=\"16\" font-size=\"13\" fill=\"#222\">{} / requests per {}</text>\n",
        num(PLOT_LEFT),
        esc(&format!("{} ごとのリクエスト数", bucket_name(width))),
        esc(&bucket_name(width)),
    );

    // The window, behind everything.
    let (wx0, wx1) = (x(&subject.start), x(&subject.end));
    if wx1 > wx0 {
        w!(
            body,
            "<g class=\"window\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{WINDOW_FILL}\"/>",
            num(wx0),
            num(PLOT_TOP),
            num(wx1 - wx0),
            num(PLOT_H),
        );
        for edge in [wx0, wx1] {
            w!(
                body,
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{WINDOW_EDGE}\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/>",
                num(edge),
                num(PLOT_TOP),
                num(base),
            );
        }
        // HH:MM alone is ambiguous once the chart spans more than one day.
        let same_day = [subject.end, t0 + chrono::TimeDelta::seconds(seconds)]
            .iter()
            .all(|t| t.date_naive() == subject.start.date_naive());
        let label = if same_day {
            format!(
                "{window_ja} {window_en} {}–{}",
                hhmm(&subject.start),
                hhmm(&subject.end)
            )
        } else {
            format!(
                "{window_ja} {window_en} {} {}–{} {}",
                day(&subject.start),
                hhmm(&subject.start),
                day(&subject.end),
                hhmm(&subject.end)
            )
        };
        // Keep the label inside the chart when the window starts near its right edge.
        let lx = wx0
            .min(SVG_W - PLOT_RIGHT - text_width(&label, 11.0))
            .max(0.0);
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" fill=\"{WINDOW_EDGE}\">{}</text></g>\n",
            num(lx + 2.0),
            num(PLOT_TOP - 6.0),
            esc(&label),
        );
    }

    // Grid and time labels.
    let mut last_day = String::new();
    for tick in tick_times(&t0, seconds) {
        let index = usize::try_from((tick - t0.timestamp()) / width)
            .unwrap_or(0)
            .min(n.saturating_sub(1));
        let offset = buckets
            .get(index)
            .map_or(*t0.offset(), |b| *b.start.offset());
        let Some(t) = DateTime::from_timestamp(tick, 0).map(|t| t.with_timezone(&offset)) else {
            continue;
        };
        let tx = x(&t);
        w!(
            body,
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#e0e0e0\" stroke-width=\"1\"/>",
            num(tx),
            num(PLOT_TOP),
            num(base),
        );
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(tx),
            num(base + 14.0),
            esc(&hhmm(&t)),
        );
        let d = day(&t);
        if d != last_day {
            w!(
                body,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
                num(tx),
                num(base + 27.0),
                esc(&d),
            );
            last_day = d;
        }
        body.push('\n');
    }

    // Axes and the y scale: 0 and the highest bucket.
    w!(
        body,
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#e0e0e0\" stroke-width=\"1\" stroke-dasharray=\"2 2\"/>\
         <line x1=\"{0}\" x2=\"{0}\" y1=\"{2}\" y2=\"{3}\" stroke=\"#999\" stroke-width=\"1\"/>\
         <line x1=\"{0}\" x2=\"{1}\" y1=\"{3}\" y2=\"{3}\" stroke=\"#999\" stroke-width=\"1\"/>\
         <text class=\"y-max\" x=\"{4}\" y=\"{5}\" text-anchor=\"end\">{6}</text>\
         <text x=\"{4}\" y=\"{3}\" text-anchor=\"end\">0</text>\n",
        num(PLOT_LEFT),
        num(SVG_W - PLOT_RIGHT),
        num(PLOT_TOP),
        num(base),
        num(PLOT_LEFT - 6.0),
        num(PLOT_TOP + 4.0),
        max,
    );

    // Bars: one group per bucket with requests, its tooltip listing the counts.
    let bar_w = plot_w / n.max(1) as f64;
    let gap = if bar_w >= 4.0 { 1.0 } else { 0.0 };
    let mut seen = BTreeSet::new();
    for (i, (bucket, total)) in buckets.iter().zip(&totals).enumerate() {
        if *total == 0 {
            continue;
        }
        let decisions = ordered(bucket.by_decision.keys().map(String::as_str));
        let counts: Vec<String> = decisions
            .iter()
            .map(|d| format!("{d} {}", bucket.by_decision.get(*d).copied().unwrap_or(0)))
            .collect();
        w!(
            body,
            "<g class=\"bar\" data-start=\"{}\"><title>{}–{} · {}</title>",
            esc(&bucket.start.to_rfc3339()),
            esc(&hhmm(&bucket.start)),
            esc(&hhmm(&(bucket.start + chrono::TimeDelta::seconds(width)))),
            esc(&counts.join(", ")),
        );
        let bx = PLOT_LEFT + i as f64 * bar_w;
        let mut below = 0;
        for d in decisions {
            let count = bucket.by_decision.get(d).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let look = look(d);
            seen.insert(look.decision);
            let (top, bottom) = (y(below + count), y(below));
            w!(
                body,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                num(bx),
                num(top),
                num((bar_w - gap).max(0.5)),
                num(bottom - top),
                look.color,
            );
            below += count;
        }
        body.push_str("</g>\n");
    }
    if max == 0 {
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#777\">記録なし / no records</text>\n",
            num(PLOT_LEFT + plot_w / 2.0),
            num(PLOT_TOP + PLOT_H / 2.0),
        );
    }

    // Legend: the window, then each decision drawn; wraps at the chart's width.
    let mut items = vec![(
        format!("{window_ja} {window_en}"),
        WINDOW_FILL,
        Some(WINDOW_EDGE),
    )];
    for l in LOOKS.iter().chain([&OTHER]) {
        if seen.contains(l.decision) {
            items.push((format!("{} {}", l.ja, l.decision), l.color, None));
        }
    }
    let (mut lx, mut ly) = (PLOT_LEFT, base + 48.0);
    body.push_str("<g class=\"legend\">");
    for (label, fill, stroke) in items {
        let item_w = 18.0 + text_width(&label, 11.0);
        if lx + item_w > SVG_W - PLOT_RIGHT && lx > PLOT_LEFT {
            lx = PLOT_LEFT;
            ly += 18.0;
        }
        let stroke = stroke.map_or(String::new(), |s| format!(" stroke=\"{s}\""));
        w!(
            body,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{fill}\"{stroke}/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            num(lx),
            num(ly - 9.0),
            num(lx + 18.0),
            num(ly),
            esc(&label),
        );
        lx += item_w + 16.0;
    }
    body.push_str("</g>\n");
    let height = ly + 10.0;

    let what = match &subject.id {
        Some(id) => format!("{id} {}", subject.title),
        None => subject.title.clone(),
    };
    let mut svg = String::new();
    w!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{0}\" height=\"{1}\" \
         viewBox=\"0 0 {0} {1}\" role=\"img\" aria-labelledby=\"timeline-title timeline-desc\" \
         font-family=\"{2}\" font-size=\"11\" fill=\"#444\">\n\
         <title id=\"timeline-title\">{3}</title>\n<desc id=\"timeline-desc\">{4}</desc>\n",
        num(SVG_W),
        num(height),
        esc(FONT),
        esc(&format!("タイムライン / Timeline: {what}")),
        esc(&format!(
            "Requests per {} from {} to {}, stacked by decision; {window_en} shaded from {} to {}; \
             the busiest bucket has {max}.",
            bucket_name(width),
            at(&report.span.from),
            at(&report.span.horizon),
            at(&subject.start),
            at(&subject.end),
        )),
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}
