//! Logs and metrics never carry bodies, query strings, card numbers, tokens or
//! Authorization values. Runs the real binary and greps everything it printed.

use crate::support::*;

const SECRETS: [&str; 7] = [
    "4111111111111111",
    "SECRETQUERYTOKEN0001",
    "SECRETBODYTOKEN0002",
    "SECRETAUTHVALUE0003",
    "SECRETCOOKIE0004",
    "SECRETORDER0005",
    "SECRETSESSION0006",
];

async fn exercise(proxy: std::net::SocketAddr, admin: std::net::SocketAddr) -> String {
    let secret_request = |path: &str, extra: &str| {
        let body = "card_no=4111111111111111&token=SECRETBODYTOKEN0002&order_no=SECRETORDER0005";
        format!(
            "POST {path}?token=SECRETQUERYTOKEN0001&card_no=4111111111111111 HTTP/1.1\r\nHost: s\r\n\
             Authorization: Bearer SECRETAUTHVALUE0003\r\nCookie: session=SECRETCOOKIE0004\r\n{extra}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // Pass-through (with the client's request id), forced maintenance, no route, and an
    // unreachable upstream.
    let passed = raw(
        proxy,
        &secret_request("/api/creditToken", "X-Request-Id: rid-kept-0001\r\n"),
    )
    .await;
    assert_eq!(passed.status, 200);
    assert_eq!(passed.header("x-request-id"), Some("rid-kept-0001"));
    let forced = raw(
        proxy,
        &secret_request(
            "/api/creditToken",
            "x-webcollect-shim-drill: maintenance\r\n",
        ),
    )
    .await;
    assert_eq!(forced.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(
        raw(proxy, &secret_request("/nowhere", "")).await.status,
        404
    );
    // Path parameters (a servlet session id) never reach a log line, forwarded or refused.
    let with_session = raw(
        proxy,
        &secret_request("/api/tradeInfo;jsessionid=SECRETSESSION0006", ""),
    )
    .await;
    assert_eq!(with_session.status, 200);
    let refused = raw(
        proxy,
        // An escaped '/' is refused whatever `non_canonical_paths` says.
        &secret_request("/api/%2FtradeInfo;jsessionid=SECRETSESSION0006", ""),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(raw(proxy, &secret_request("/down/x", "")).await.status, 502);
    // Heads that never become requests: one the client abandons halfway, one hyper refuses
    // (400). Each gets its line and its count; nothing of what was sent is shown.
    let mut gone = RawConn::connect(proxy).await;
    gone.send(b"POST /api/creditToken?token=SECRETQUERYTOKEN0001 HTTP/1.1\r\nHost: s\r\nCookie: session=SECRETCOOKIE0004\r\n")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(gone);
    let garbage = raw(
        proxy,
        b"POST /api/creditToken?token=SECRETQUERYTOKEN0001 HTTP/1.1\r\nHost: s\r\nBad Header SECRETCOOKIE0004\r\n\r\n",
    )
    .await;
    assert_eq!(garbage.status, 400);
    let metrics = || async { raw(admin, &admin_get("/metrics")).await.text() };
    // Three requests with no route refused: the escaped '/' above and the two heads.
    let counted =
        "webcollect_shim_requests_total{route=\"-\",decision=\"bad_request\",status=\"4xx\"} 3\n";
    eventually(
        std::time::Duration::from_secs(5),
        "both heads are counted",
        || async { metrics().await.contains(counted) },
    )
    .await;
    metrics().await
}

fn shim_config(upstream: &str, format: &str) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        "{}\n[log]\nformat = \"{format}\"\n\n[upstreams.down]\nurl = \"http://{down}\"\n\n[[routes]]\nid = \"down\"\npath_prefix = \"/down/\"\nkind = \"api\"\nservice = \"other\"\nupstream = \"down\"\n",
        config(upstream)
    );
    let dir = std::env::temp_dir().join(format!(
        "webcollect-shim-logs-{format}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shim.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn no_secrets_in(format: &str) {
    let upstream = Upstream::fixed("<return/>").await;
    let path = shim_config(&upstream.url(), format);
    let (running, proxy, admin) = ShimProcess::start(&path, format == "json");
    let metrics = exercise(proxy, admin).await;
    let lines = running.stop();
    let all = lines.join("\n");
    // The request lines are there, with the path and no query.
    let request_lines: Vec<&String> = lines.iter().filter(|l| l.contains("Request")).collect();
    assert_eq!(request_lines.len(), 8, "{all}");
    for (status, error) in [(499, "client-gone"), (400, "bad-head")] {
        let (status, error) = if format == "json" {
            (
                format!("\"status\":{status}"),
                format!("\"error\":\"{error}\""),
            )
        } else {
            (format!("status={status}"), format!("error=\"{error}\""))
        };
        assert!(
            request_lines
                .iter()
                .any(|l| l.contains(&status) && l.contains(&error)),
            "{status} {error}: {all}"
        );
    }
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("/api/creditToken") && l.contains("maintenance")),
        "{all}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("upstream-unreachable")),
        "{all}"
    );
    // Every request line names its request id: the client's, or a generated one.
    let id_field = if format == "json" {
        "\"request_id\":\""
    } else {
        "request_id=\""
    };
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains(&format!("{id_field}rid-kept-0001"))),
        "{all}"
    );
    for line in &request_lines {
        let id = &line[line.find(id_field).expect(line) + id_field.len()..];
        let id: String = id.chars().take_while(char::is_ascii_alphanumeric).collect();
        assert!(id == "rid" || id.len() == 32, "{line}");
    }
    for secret in SECRETS {
        assert!(
            !all.contains(secret),
            "{secret} leaked into the logs:\n{all}"
        );
        assert!(
            !metrics.contains(secret),
            "{secret} leaked into the metrics:\n{metrics}"
        );
    }
    assert!(!all.contains("token="), "a query string leaked:\n{all}");
}

#[tokio::test]
async fn no_secrets_in_text_logs_or_metrics() {
    no_secrets_in("text").await;
}

#[tokio::test]
async fn no_secrets_in_json_logs() {
    no_secrets_in("json").await;
}
