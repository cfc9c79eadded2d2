//! One intermediate model of a report, sections of facts and tables, from which the HTML
//! and the Markdown are both written, so the two always carry the same content.

use super::*;

// ---------------------------------------------------------------------------------------
// The model HTML and Markdown share
// ---------------------------------------------------------------------------------------

/// One table cell, before it is written as HTML or Markdown.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    /// Plain text.
    Text(String),
    /// An identifier (order number, request id, service): monospace on the page.
    Code(String),
    /// A number or duration: right-aligned.
    Num(String),
    /// A PASS/FAIL badge.
    Verdict(bool),
    /// A decision with its colour.
    Decision(String),
    /// Several values (a verdict's offenders).
    List(Vec<String>),
    /// Text that needs attention (a count over its threshold, a service not recovered).
    Warn(String),
    /// Nothing to show.
    Empty,
}

/// A column heading.
#[derive(Debug, Clone)]
pub(super) struct Col {
    pub(super) ja: String,
    pub(super) en: String,
    pub(super) num: bool,
}

pub(super) fn col(ja: &str, en: &str) -> Col {
    Col {
        ja: ja.into(),
        en: en.into(),
        num: false,
    }
}

pub(super) fn num_col(ja: &str, en: &str) -> Col {
    Col {
        num: true,
        ..col(ja, en)
    }
}

/// A table row; `fail` rows are highlighted (failed verdicts).
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// `data-key` on the page: lets a reader (or a test) find a verdict's row.
    pub(super) key: Option<String>,
    pub(super) fail: bool,
    pub(super) cells: Vec<Cell>,
}

pub(super) fn row(cells: Vec<Cell>) -> Row {
    Row {
        key: None,
        fail: false,
        cells,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    /// The `id` of the table on the page.
    pub(super) id: &'static str,
    pub(super) cols: Vec<Col>,
    pub(super) rows: Vec<Row>,
}

/// One labelled value of a facts list.
#[derive(Debug, Clone)]
pub(super) struct Fact {
    pub(super) ja: &'static str,
    pub(super) en: &'static str,
    pub(super) value: Cell,
}

pub(super) fn fact(ja: &'static str, en: &'static str, value: Cell) -> Fact {
    Fact { ja, en, value }
}

#[derive(Debug, Clone)]
pub(super) enum Block {
    /// A sub-heading.
    H3(&'static str, &'static str),
    Facts(Vec<Fact>),
    Table(Table),
    /// The completeness warning with its reasons.
    Warning(Vec<String>),
    /// The timeline: the SVG on the page, a coarser table in Markdown.
    Timeline,
}

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub(super) id: &'static str,
    pub(super) ja: &'static str,
    pub(super) en: &'static str,
    pub(super) blocks: Vec<Block>,
}

pub(super) fn kind_label(kind: SubjectKind) -> (&'static str, &'static str) {
    match kind {
        SubjectKind::Window => ("メンテナンス枠", "window"),
        SubjectKind::Drill => ("ドリル", "drill"),
        SubjectKind::Range => ("期間", "range"),
    }
}

pub(super) fn count(n: u64) -> Cell {
    Cell::Num(n.to_string())
}

pub(super) fn time_cell(t: Option<&DateTime<FixedOffset>>) -> Cell {
    t.map_or(Cell::Empty, |t| Cell::Text(at(t)))
}

pub(super) fn orders_table(id: &'static str, orders: &[ReportedOrder], limit: u64) -> Table {
    Table {
        id,
        cols: vec![
            col("加盟店コード", "trader_code"),
            col("受付番号", "order_no"),
            num_col("試行回数", "attempts"),
            col("最初の成功", "first success"),
        ],
        rows: orders
            .iter()
            .map(|o| {
                let attempts = if o.attempts > limit {
                    Cell::Warn(o.attempts.to_string())
                } else {
                    count(o.attempts)
                };
                row(vec![
                    if o.trader_code.is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Code(o.trader_code.clone())
                    },
                    Cell::Code(o.order_no.clone()),
                    attempts,
                    time_cell(o.first_success.as_ref()),
                ])
            })
            .collect(),
    }
}

/// The report as sections of facts and tables, in reading order.
pub(super) fn sections(report: &Report) -> Vec<Section> {
    let s = &report.subject;
    let t = &report.thresholds;
    let (kind_ja, kind_en) = kind_label(s.kind);
    let mut out = Vec::new();

    // Subject.
    let mut subject = vec![
        fact("種類", "kind", Cell::Text(format!("{kind_ja} / {kind_en}"))),
        fact("ID", "id", s.id.clone().map_or(Cell::Empty, Cell::Code)),
        fact("タイトル", "title", Cell::Text(s.title.clone())),
        fact("開始", "start", Cell::Text(at(&s.start))),
        fact("終了", "end", Cell::Text(at(&s.end))),
        fact(
            "長さ",
            "length",
            Cell::Text(duration((s.end - s.start).num_seconds())),
        ),
        fact(
            "サービス",
            "services",
            if s.services.is_empty() {
                Cell::Text("全サービス / every service".into())
            } else {
                Cell::List(s.services.clone())
            },
        ),
        fact(
            "タイムゾーン",
            "time zone",
            Cell::Code(report.timezone.clone()),
        ),
        fact("集計開始", "span from", Cell::Text(at(&report.span.from))),
        fact("集計終了", "span to", Cell::Text(at(&report.span.to))),
        fact(
            "打ち切り",
            "horizon",
            Cell::Text(if report.provisional {
                format!(
                    "{} (暫定 / provisional: orders may still recover until {})",
                    at(&report.span.horizon),
                    at(&report.span.to)
                )
            } else {
                at(&report.span.horizon)
            }),
        ),
        fact(
            "レプリカ",
            "replicas",
            if report.replicas.is_empty() {
                Cell::Empty
            } else {
                Cell::List(report.replicas.clone())
            },
        ),
        fact(
            "許容値",
            "thresholds",
            Cell::Text(format!(
                "stranded ≤ {}, attempts per order ≤ {}, leaks ≤ {}",
                t.max_stranded, t.max_attempts_per_order, t.max_leaks
            )),
        ),
    ];
    let failed = report.failed().count();
    subject.splice(
        0..0,
        [
            fact("総合判定", "overall", Cell::Verdict(report.passed())),
            fact(
                "不合格の判定",
                "verdicts failed",
                Cell::Text(format!("{failed} / {}", report.verdicts.len())),
            ),
        ],
    );
    let mut blocks = vec![Block::Facts(subject)];
    if !report.complete {
        blocks.push(Block::Warning(report.incomplete.clone()));
    }
    out.push(Section {
        id: "subject",
        ja: "対象",
        en: "Subject",
        blocks,
    });

    // Verdicts.
    out.push(Section {
        id: "verdicts",
        ja: "判定",
        en: "Verdicts",
        blocks: vec![Block::Table(Table {
            id: "verdict-table",
            cols: vec![
                col("判定", "verdict"),
                col("結果", "result"),
                col("詳細", "detail"),
                col("該当", "offenders"),
            ],
            rows: report
                .verdicts
                .iter()
                .map(|v| Row {
                    key: Some(v.name.clone()),
                    fail: !v.ok,
                    cells: vec![
                        Cell::Code(v.name.clone()),
                        Cell::Verdict(v.ok),
                        Cell::Text(v.detail.clone()),
                        if v.offenders.is_empty() {
                            Cell::Empty
                        } else {
                            Cell::List(v.offenders.clone())
                        },
                    ],
                })
                .collect(),
        })],
    });

    out.push(Section {
        id: "timeline",
        ja: "タイムライン",
        en: "Timeline",
        blocks: vec![Block::Timeline],
    });

    // Traffic.
    let r = &report.requests;
    let decisions = ordered(r.by_decision.keys().map(String::as_str));
    let by_decision = Table {
        id: "by-decision",
        cols: vec![
            col("判定", "decision"),
            col("意味", "meaning"),
            num_col("件数", "requests"),
            num_col("割合", "share"),
        ],
        rows: decisions
            .iter()
            .map(|d| {
                let n = r.by_decision.get(*d).copied().unwrap_or(0);
                let share = n as f64 * 100.0 / r.total.max(1) as f64;
                row(vec![
                    Cell::Decision((*d).to_string()),
                    Cell::Text(look(d).ja.into()),
                    count(n),
                    Cell::Num(format!("{share:.1}%")),
                ])
            })
            .collect(),
    };
    let service_decisions = ordered(
        r.by_service
            .values()
            .flat_map(|m| m.keys().map(String::as_str)),
    );
    let mut service_cols = vec![col("サービス", "service")];
    service_cols.extend(service_decisions.iter().map(|d| Col {
        ja: look(d).ja.into(),
        en: (*d).to_string(),
        num: true,
    }));
    service_cols.push(num_col("計", "total"));
    let by_service = Table {
        id: "by-service",
        cols: service_cols,
        rows: r
            .by_service
            .iter()
            .map(|(service, m)| {
                let mut cells = vec![Cell::Code(service.clone())];
                cells.extend(
                    service_decisions
                        .iter()
                        .map(|d| count(m.get(*d).copied().unwrap_or(0))),
                );
                cells.push(count(m.values().sum()));
                row(cells)
            })
            .collect(),
    };
    let by_function_div = Table {
        id: "by-function-div",
        cols: vec![col("機能区分", "function_div"), num_col("件数", "requests")],
        rows: r
            .by_function_div
            .iter()
            .map(|(div, n)| row(vec![Cell::Code(div.clone()), count(*n)]))
            .collect(),
    };
    out.push(Section {
        id: "traffic",
        ja: "通信量",
        en: "Traffic",
        blocks: vec![
            Block::Facts(vec![
                fact("全リクエスト", "requests in the span", count(r.total)),
                fact("枠内", "in the window", count(r.in_window)),
                fact("注文数", "distinct orders", count(report.orders.distinct)),
                fact("加盟店数", "distinct traders", count(report.orders.traders)),
            ]),
            Block::H3("判定別", "By decision"),
            Block::Table(by_decision),
            Block::H3("サービス別", "By service and decision"),
            Block::Table(by_service),
            Block::H3("機能区分別", "By function_div"),
            Block::Table(by_function_div),
        ],
    });

    // Retries.
    let o = &report.orders;
    let limit = t.max_attempts_per_order;
    out.push(Section {
        id: "retries",
        ja: "再試行",
        en: "Retries",
        blocks: vec![
            Block::Facts(vec![
                fact("再試行された注文", "orders retried", count(o.retried)),
                fact(
                    "1注文の最多試行",
                    "most attempts of one order",
                    if o.max_attempts > limit {
                        Cell::Warn(o.max_attempts.to_string())
                    } else {
                        count(o.max_attempts)
                    },
                ),
                fact("許容", "allowed", count(limit)),
            ]),
            Block::H3("枠内に試行された注文", "Orders attempted during the window"),
            Block::Table(orders_table("attempted", &o.attempted, limit)),
            Block::H3("加盟店の最繁忙分", "Traders' busiest minute"),
            Block::Table(Table {
                id: "traders",
                cols: vec![
                    col("加盟店コード", "trader_code"),
                    num_col("枠内の件数", "requests in the window"),
                    col("最繁忙分", "busiest minute"),
                    num_col("その分の件数", "requests that minute"),
                ],
                rows: report
                    .traders
                    .iter()
                    .map(|tr| {
                        row(vec![
                            Cell::Code(tr.trader_code.clone()),
                            count(tr.requests),
                            Cell::Text(minute(&tr.busiest_minute)),
                            count(tr.busiest_minute_requests),
                        ])
                    })
                    .collect(),
            }),
        ],
    });

    // Recovery.
    out.push(Section {
        id: "recovery",
        ja: "復旧",
        en: "Recovery",
        blocks: vec![Block::Table(Table {
            id: "recovery-table",
            cols: vec![
                col("サービス", "service"),
                col("終了後の最初の成功", "first success after the end"),
                num_col("終了からの秒数", "seconds after the end"),
            ],
            rows: report
                .recovery
                .iter()
                .map(|rec| {
                    row(vec![
                        Cell::Code(rec.service.clone()),
                        rec.first_success
                            .as_ref()
                            .map_or(Cell::Warn("未復旧 / none yet".into()), |t| {
                                Cell::Text(at(t))
                            }),
                        rec.after_end_seconds.map_or(Cell::Empty, |s| {
                            Cell::Num(if s >= 60.0 {
                                format!("{s} s ({})", duration(s as i64))
                            } else {
                                format!("{s} s")
                            })
                        }),
                    ])
                })
                .collect(),
        })],
    });

    // What became of the orders.
    out.push(Section {
        id: "orders",
        ja: "注文の行方",
        en: "Orders",
        blocks: vec![
            Block::H3(
                "取り残された注文",
                "Stranded: no success before the horizon",
            ),
            Block::Table(orders_table("stranded", &o.stranded, limit)),
            Block::H3(
                "枠の後に成功した注文",
                "Recovered: successful after the window",
            ),
            Block::Table(orders_table("recovered", &o.recovered, limit)),
            Block::H3("枠内に成功した注文", "Successful during the window"),
            Block::Table(orders_table(
                "succeeded-in-window",
                &o.succeeded_in_window,
                limit,
            )),
        ],
    });

    // Leaks.
    out.push(Section {
        id: "leaks",
        ja: "漏れ",
        en: "Leaks: requests that reached the gateway during the window",
        blocks: vec![Block::Table(Table {
            id: "leak-table",
            cols: vec![
                col("時刻", "at"),
                col("レプリカ", "replica"),
                col("リクエストID", "request id"),
                col("ルート", "route"),
                col("サービス", "service"),
                col("メソッド", "method"),
                col("判定", "decision"),
                col("理由", "reason"),
                num_col("ステータス", "status"),
                col("加盟店コード", "trader_code"),
                col("受付番号", "order_no"),
            ],
            rows: report
                .leaks
                .iter()
                .map(|l| {
                    row(vec![
                        Cell::Text(at(&l.at)),
                        Cell::Code(l.replica.clone()),
                        Cell::Code(l.request_id.clone()),
                        Cell::Code(l.route.clone()),
                        Cell::Code(l.service.clone()),
                        Cell::Code(l.method.clone()),
                        Cell::Decision(l.decision.clone()),
                        Cell::Text(l.reason.clone()),
                        count(u64::from(l.status)),
                        l.trader_code.clone().map_or(Cell::Empty, Cell::Code),
                        l.order_no.clone().map_or(Cell::Empty, Cell::Code),
                    ])
                })
                .collect(),
        })],
    });
    out
}
