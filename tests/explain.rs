//! `explain` runs the real stack: for every kind of answer, its bytes are what a running shim
//! sends for the same request at the same drill time (but for `date`, the server's clock).

use std::process::Command;
use std::time::Duration;

use http::Response;

use crate::support::*;

/// The support config plus an unreachable upstream, a slow one and a small body limit.
fn explain_config(upstream: &str, down: std::net::SocketAddr, slow: &str) -> String {
    format!(
        "{}\n[upstreams.down]\nurl = \"http://{down}\"\nconnect_timeout = \"1s\"\n\n\
         [upstreams.slow]\nurl = \"{slow}\"\nresponse_timeout = \"300ms\"\n\n\
         [[routes]]\nid = \"down\"\npath_prefix = \"/down/\"\nkind = \"api\"\nservice = \"other\"\nupstream = \"down\"\n\n\
         [[routes]]\nid = \"slow\"\npath_prefix = \"/slow/\"\nkind = \"passthrough\"\nservice = \"other\"\nupstream = \"slow\"\n",
        config(upstream).replace("[server]\n", "[server]\nmax_request_body = 4096\n")
    )
}

/// What `explain` prints as the answer.
fn explained(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
        .args([
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--at",
            DURING,
        ])
        .args(args)
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, response) = text
        .split_once("\nresponse:\n")
        .unwrap_or_else(|| panic!("{text}"));
    response.strip_suffix('\n').unwrap_or(response).to_string()
}

/// What the running shim sends, as bytes on the wire, but for `date`.
async fn wire(shim: &TestShim, request: &str) -> String {
    let res = raw(shim.addr, request.as_bytes()).await;
    let reason = http::StatusCode::from_u16(res.status)
        .unwrap()
        .canonical_reason()
        .unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", res.status);
    for (name, value) in res.headers.iter().filter(|(n, _)| n != "date") {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&res.body));
    out
}

#[tokio::test]
async fn explain_prints_the_bytes_a_running_shim_sends_for_every_answer_kind() {
    let upstream = Upstream::fixed("<return/>").await;
    let slow = Upstream::start(|_req: http::Request<hyper::body::Incoming>| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Response::new(full("late"))
    })
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let dir = fresh_dir("explain-wire");
    let path = dir.join("shim.toml");
    std::fs::write(&path, explain_config(&upstream.url(), down, &slow.url())).unwrap();
    let shim = TestShim::start_file(&path, t(DURING)).await;

    // The shim's own `Via` mark, as its upstream saw it: a request carrying it is a loop.
    let passed = wire(
        &shim,
        "GET /kuroneko-atobarai-api/x HTTP/1.1\r\nHost: s\r\nX-Request-Id: t-pass\r\n\r\n",
    )
    .await;
    assert!(passed.starts_with("HTTP/1.1 200"), "{passed}");
    let via = upstream.seen()[0].headers["via"]
        .to_str()
        .unwrap()
        .to_string();

    // (name, request line and headers, explain's arguments, status)
    let cases: Vec<(&str, String, Vec<&str>, u16)> = vec![
        (
            "maintenance XML",
            "POST /api/creditToken".into(),
            vec!["POST", "/api/creditToken"],
            200,
        ),
        (
            "maintenance page",
            "GET /webcollect/settleSelectAction.gw".into(),
            vec!["GET", "/webcollect/settleSelectAction.gw"],
            503,
        ),
        (
            "embedded token library",
            "GET /api/token/js/embeddedTokenLib.js".into(),
            vec!["GET", "/api/token/js/embeddedTokenLib.js"],
            200,
        ),
        (
            "modal token library",
            "GET /api/token/js/tokenlib.js".into(),
            vec!["GET", "/api/token/js/tokenlib.js"],
            200,
        ),
        ("404", "GET /nowhere".into(), vec!["GET", "/nowhere"], 404),
        ("405", "TRACE /api/x".into(), vec!["TRACE", "/api/x"], 405),
        (
            "400 bad path",
            "GET /api/%2Fx".into(),
            vec!["GET", "/api/%2Fx"],
            400,
        ),
        (
            "413",
            "POST /down/x HTTP/1.1\r\nContent-Length: 5000".into(),
            vec!["-H", "Content-Length: 5000", "POST", "/down/x"],
            413,
        ),
        (
            "502",
            "GET /down/x".into(),
            vec!["--upstream", "unreachable", "GET", "/down/x"],
            502,
        ),
        (
            "504",
            "GET /slow/x".into(),
            vec!["--upstream", "timeout", "GET", "/slow/x"],
            504,
        ),
        (
            "508",
            format!("GET /api/creditToken HTTP/1.1\r\nVia: {via}"),
            vec![
                "-H",
                "Via: 1.1 webcollect-shim-explain",
                "GET",
                "/api/creditToken",
            ],
            508,
        ),
    ];
    for (i, (name, head, args, status)) in cases.into_iter().enumerate() {
        let id = format!("t-{i}");
        let head = if head.contains("HTTP/1.1") {
            head
        } else {
            format!("{head} HTTP/1.1")
        };
        let on_the_wire = wire(
            &shim,
            &format!("{head}\r\nHost: s\r\nX-Request-Id: {id}\r\n\r\n"),
        )
        .await;
        let mut all = vec!["-H", "Host: s"];
        let id_header = format!("X-Request-Id: {id}");
        all.extend(["-H", id_header.as_str()]);
        all.extend(args);
        let by_explain = explained(&path, &all);
        assert!(
            on_the_wire.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: {on_the_wire}"
        );
        assert_eq!(by_explain, on_the_wire, "{name}");
    }
}
