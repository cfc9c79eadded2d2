//! The binary: `check`, `explain`, and config errors printed as PATH:LINE:COLUMN.

use std::path::PathBuf;
use std::process::{Command, Output};

fn shim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Writes `text` to a unique temp file and returns its path.
fn temp_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webcollect-shim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn shipped_config_passes_check() {
    let out = shim(&["check", "--at", "2020-04-20T01:00:00+09:00"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("config/webcollect-shim.toml: ok"), "{text}");
    assert!(text.contains("4月20日(月) 2時00分～6時00分"), "{text}");
    assert!(
        text.contains("UTC 2020-04-19T17:00:00Z → 2020-04-19T21:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("2020-04-20 02:00:00 JST  (2020-04-19T17:00:00Z)  window 2020-04-20 starts"),
        "{text}"
    );
}

#[test]
fn explain_prints_the_decision_and_the_exact_answer() {
    let out = shim(&[
        "explain",
        "--at",
        "2020-04-20T02:30:00+09:00",
        "POST",
        "/test_gateway/creditToken.api",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("route:    test-credit"), "{text}");
    assert!(
        text.contains("decision: maintenance window 2020-04-20"),
        "{text}"
    );
    assert!(text.contains("upstream: not contacted"), "{text}");
    assert!(text.ends_with(
        "\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n\n"
    ), "{text}");

    let out = shim(&[
        "explain",
        "--at",
        "2020-04-20T06:00:00+09:00",
        "POST",
        "/api/xp/tradeInfoXp",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("decision: pass (no window covers this route now)"),
        "{text}"
    );
    // The route names the upstream; the request it would receive is shown as sent.
    assert!(
        text.contains("upstream apixp https://apixp.kuronekoyamato.co.jp)"),
        "{text}"
    );
    assert!(
        text.contains("POST /api/xp/tradeInfoXp HTTP/1.1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("host: apixp.kuronekoyamato.co.jp\r\n"),
        "{text}"
    );
    assert!(
        text.contains("via: 1.1 webcollect-shim-explain\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n(the upstream's answer)\n\n"),
        "{text}"
    );

    let out = shim(&[
        "explain",
        "--at",
        "2020-04-20T01:00:00+09:00",
        "-H",
        "x-webcollect-shim-drill: maintenance",
        "GET",
        "/webcollect/settleSelectAction.gw",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("decision: maintenance (forced by the drill header)"),
        "{text}"
    );
    assert!(text.contains("HTTP/1.1 503 Service Unavailable"), "{text}");
}

/// Every path family of the gateway is routed by the shipped config, and the notice's
/// services are in (or out of) the window as the notice says.
#[test]
fn shipped_config_routes_every_path_family() {
    let during = "2020-04-20T03:00:00+09:00";
    let cases = [
        (
            "POST",
            "/api/creditToken",
            "prod-credit",
            "maintenance",
            "api.kuronekoyamato.co.jp",
        ),
        ("POST", "/api/cvs1", "prod-cvs", "maintenance", ""),
        (
            "POST",
            "/api/tradeInfo",
            "prod-trade-info",
            "maintenance",
            "",
        ),
        (
            "POST",
            "/api/someFutureFunction",
            "prod-api",
            "maintenance",
            "",
        ),
        (
            "POST",
            "/api/xp/tradeInfoXp",
            "prod-xp",
            "maintenance",
            "apixp.kuronekoyamato.co.jp",
        ),
        (
            "POST",
            "/webcollect/settleSelectAction.gw",
            "prod-link",
            "maintenance",
            "payment.kuronekoyamato.co.jp",
        ),
        (
            "GET",
            "/api/token/js/embeddedTokenLib.js",
            "prod-token-js",
            "maintenance",
            "",
        ),
        (
            "GET",
            "/api/token/js/tokenlib.js",
            "prod-token-js",
            "maintenance",
            "",
        ),
        (
            "POST",
            "/test_gateway/creditToken.api",
            "test-credit",
            "maintenance",
            "ptwebcollect.jp",
        ),
        (
            "POST",
            "/test_gateway/xp/tradeInfoXp.api",
            "test-xp",
            "maintenance",
            "ptwebcollect.jp",
        ),
        (
            "POST",
            "/test_gateway/settleSelectAction.gw",
            "test-link",
            "maintenance",
            "",
        ),
        (
            "GET",
            "/test_gateway/token/js/embeddedTokenLib.js",
            "test-token-js",
            "maintenance",
            "",
        ),
        (
            "GET",
            "/test_gateway/token/js/tokenlib.js",
            "test-token-js",
            "maintenance",
            "",
        ),
        (
            "POST",
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "atobarai-api",
            "pass",
            "atobarai.kuronekoyamato.co.jp",
        ),
        ("GET", "/favicon.ico", "", "no-route", ""),
    ];
    for (method, path, route, decision, host) in cases {
        let out = shim(&["explain", "--at", during, method, path]);
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let text = stdout(&out);
        if route.is_empty() {
            assert!(text.contains("route:    none"), "{path}: {text}");
        } else {
            assert!(
                text.contains(&format!("route:    {route} ")),
                "{path}: {text}"
            );
        }
        assert!(
            text.contains(&format!("decision: {decision}")),
            "{path}: {text}"
        );
        assert!(text.contains(host), "{path}: {text}");
    }
}

#[test]
fn every_config_error_is_reported_with_line_and_column() {
    let text = r#"[listen]
proxy = "not-an-address"

[clock]
timezone = "Asia/Tokio"

[maintenance]
api_status = 42

[upstreams.gw]
url = "ftp://example.com"
response_timeout = "soon"

[[windows]]
id = "w"
start = "2020-04-20 06:00"
end = "2020-04-20 02:00"
services = ["webcollect..api"]

[[routes]]
id = "r"
path_prefix = "api/"
kind = "api"
service = "webcollect.api"
upstream = "nowhere"
"#;
    let path = temp_config("errors.toml", text);
    let out = shim(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stdout(&out).is_empty());
    let p = path.display();
    let expected = [
        format!("{p}:2:9: invalid listen address \"not-an-address\""),
        format!("{p}:5:12: unknown time zone \"Asia/Tokio\""),
        format!("{p}:8:14: status must be between 200 and 599"),
        format!("{p}:11:7: upstream url \"ftp://example.com\" must be http:// or https://"),
        format!("{p}:12:20: invalid duration \"soon\""),
        format!("{p}:17:7: window \"w\" ends before it starts"),
        format!("{p}:18:13: invalid service name \"webcollect..api\""),
        format!("{p}:22:15: invalid route path \"api/\""),
        format!("{p}:25:12: unknown upstream \"nowhere\" (defined: gw)"),
    ];
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    for (want, got) in expected.iter().zip(&lines) {
        assert!(
            got.starts_with(want.as_str()),
            "want {want:?}\n got {got:?}\nall:\n{err}"
        );
    }
    assert_eq!(lines.len(), expected.len() + 1, "{err}");
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("9 error(s); nothing started"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_syntax_errors_are_located() {
    let cases = [
        (
            "[[windows]]\nid = \"w\"\nstrat = \"2020-04-20 02:00\"\n",
            "3:1: unknown field `strat`, expected one of",
        ),
        (
            "[listen]\nproxy = \"0.0.0.0:8080\"\nadmn = \"x\"\n",
            "3:1: unknown field `admn`",
        ),
        (
            "[listn]\nproxy = \"0.0.0.0:8080\"\n",
            "1:2: unknown section `listn`",
        ),
        ("[listen\n", "1:8:"),
        (
            "[[routes]]\nid = \"r\"\npath = \"/a\"\nkind = \"apii\"\nservice = \"s\"\nupstream = \"u\"\n",
            "4:8: unknown variant `apii`, expected one of `api`, `token_js`, `page`, `passthrough`",
        ),
        (
            "[admin]\nstate_dir = \" \"\n",
            "2:13: `state_dir` must be a directory path",
        ),
        (
            "[clock]\nstart_at = \"2020-04-20 02:00\"\nanchor = \"tomorrow\"\n",
            "3:10: invalid time \"tomorrow\"",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = temp_config(&format!("bad-{i}.toml"), text);
        let out = shim(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(78), "{text}");
        let err = stderr(&out);
        let want = format!("{}:{want}", path.display());
        assert!(
            err.lines().any(|l| l.starts_with(&want)),
            "want {want:?} in:\n{err}"
        );
    }
}

#[test]
fn bad_page_template_is_a_config_error() {
    let template = temp_config("bad-page.html", "<p>ok</p>\n<p>{{windw}}</p>\n");
    let path = temp_config(
        "page.toml",
        &format!(
            "[maintenance]\npage_template = {:?}\n\n[upstreams.gw]\nurl = \"http://127.0.0.1:1\"\n\n[[routes]]\nid = \"r\"\npath_prefix = \"/\"\nkind = \"page\"\nservice = \"s\"\nupstream = \"gw\"\n",
            template.display().to_string()
        ),
    );
    let out = shim(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let want = format!(
        "{}:2:17: page template {}: template line 2: unknown placeholder {{{{windw}}}}",
        path.display(),
        template.display()
    );
    assert!(
        stderr(&out).starts_with(&want),
        "want {want:?}\n got {}",
        stderr(&out)
    );
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = shim(&["check", "--config", "/nonexistent/shim.toml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).starts_with("/nonexistent/shim.toml: cannot read config file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_config_never_serves() {
    let path = temp_config(
        "serve-bad.toml",
        "[listen]\nproxy = \"127.0.0.1:0\"\nbogus = 1\n",
    );
    let out = shim(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("unknown field `bogus`"));
}

#[test]
fn check_and_explain_show_the_anchored_drill_clock() {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/webcollect-shim.toml"),
    )
    .unwrap();
    let text = shipped.replace(
        "[clock]\n",
        "[clock]\nstart_at = \"2020-04-20T01:59:00+09:00\"\nanchor = \"2026-12-01 10:00\"\nspeed = 60\n",
    );
    assert_ne!(text, shipped, "the shipped config has a [clock] section");
    let path = temp_config("anchored.toml", &text);
    let out = shim(&["check", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let clock = "drill clock: reads 2020-04-20 01:59:00 JST at the real instant 2026-12-01 10:00:00 JST (2026-12-01T01:00:00Z) and runs at 60x";
    assert!(report.contains(clock), "{report}");
    assert!(
        report.contains(&format!(
            "sha256: {}",
            webcollect_shim::config::digest(text.as_bytes())
        )),
        "{report}"
    );

    let out = shim(&[
        "explain",
        "--config",
        path.to_str().unwrap(),
        "--at",
        "2020-04-20T02:30:00+09:00",
        "POST",
        "/api/creditToken",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("clock:    {}", clock.replace(": reads", " reads"))),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_anchor_without_start_at_is_a_located_error() {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/webcollect-shim.toml"),
    )
    .unwrap();
    let text = shipped.replace("[clock]\n", "[clock]\nanchor = \"2026-12-01 10:00\"\n");
    let path = temp_config("anchor-alone.toml", &text);
    let out = shim(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let line = text
        .lines()
        .position(|l| l.starts_with("anchor = "))
        .unwrap()
        + 1;
    assert!(
        stderr(&out).starts_with(&format!(
            "{}:{line}:10: `anchor` needs `start_at` (the drill clock's starting instant)",
            path.display()
        )),
        "{}",
        stderr(&out)
    );
}
