//! The stand-in gateway on its own: the gateway's error and success shapes, orders remembered
//! per trader_code and order_no, single-use tokens, stored cards, bounded and persistent
//! state, the token libraries, the link method (Shift_JIS forms, settlement, notification)
//! and the admin screen; then end to end behind the shim on config/drill.toml.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use webcollect_shim::qa::gateway::{self, GatewayOptions};

use crate::support::gateway::*;
use crate::support::*;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const AT: &str = "2020-04-20T01:00:00+09:00";

/// The whole answer for `returnCode` 1 with `code` at 2020-04-20 01:00 JST.
fn refused(code: &str) -> String {
    format!(
        "{XML_DECL}<return>\n<returnCode>1</returnCode>\n<errorCode>{code}</errorCode>\n<returnDate>20200420010000</returnDate>\n</return>\n"
    )
}

/// An A08 for `order_no` with `token` and 1500 yen.
fn a08(order_no: &str, token: &str) -> Vec<u8> {
    post(
        "/api/creditToken",
        &format!(
            "function_div=A08&trader_code=123456789&device_div=2&order_no={order_no}&settle_price=1500&buyer_name_kanji=%E5%B1%B1%E7%94%B0&pay_way=1&token={token}"
        ),
    )
}

/// An E04 for `order_no`.
fn e04(order_no: &str) -> Vec<u8> {
    post(
        "/api/tradeInfo",
        &format!("function_div=E04&trader_code=123456789&order_no={order_no}"),
    )
}

/// The XML of an answer that must be the stand-in's, HTTP 200, `text/xml`.
async fn call(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let res = raw(addr, request).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
    assert!(from_stand_in(&res));
    res.text()
}

#[tokio::test]
async fn stand_in_rejects_non_post_and_missing_function_div_like_the_gateway() {
    let mock = StandIn::start("2020-04-20T01:23:45+09:00").await;

    for path in [
        "/api/creditToken",
        "/api/xp/tradeInfoXp",
        "/test_gateway/creditToken.api",
        "/test_gateway/xp/tradeInfoXp.api",
    ] {
        let res = raw(mock.addr, &get(path)).await;
        // HTTP 200 whatever returnCode says: clients treat any other status as transport failure.
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
        assert!(from_stand_in(&res), "{path}");
        assert_eq!(
            res.text(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z012000001</errorCode>\n<returnDate>20200420012345</returnDate>\n</return>\n",
            "{path}"
        );
    }

    // returnDate follows the injected clock, in JST whatever the clock's zone.
    mock.clock.set(t("2020-04-19T17:30:00Z"));
    for body in [
        "trader_code=123456789&order_no=1",
        "function_div=&order_no=1",
        "",
    ] {
        let text = call(mock.addr, &post("/api/creditToken", body)).await;
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z012000002</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n",
            "{body:?}"
        );
    }

    // Paths that are not the gateway's are 404s, still marked as the stand-in's.
    for request in [
        post("/api/noSuchFunction", "function_div=A08"),
        post("/test_gateway/creditToken", "function_div=A08"),
        get("/"),
    ] {
        let res = raw(mock.addr, &request).await;
        assert_eq!(res.status, 404);
        assert!(from_stand_in(&res));
    }
    mock.stop().await;
}

#[tokio::test]
async fn stand_in_answers_success_in_the_gateway_shape() {
    let mock = StandIn::start(AT).await;

    // A08 (token settlement): the common elements, then the approval number.
    assert_eq!(
        call(mock.addr, &a08("ORDER-1", "abcdefghijklmnop")).await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<crdCResCd>020200420010000</crdCResCd>\n</return>\n"
    );
    // E04 reports it: exactly one resultData, in the gateway's element order.
    assert_eq!(
        call(mock.addr, &e04("ORDER-1")).await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<resultCount>1</resultCount>\n<resultData>\n<orderNo>ORDER-1</orderNo>\n<deviceDiv>2</deviceDiv>\n<settleDate>20200420010000</settleDate>\n<settlePrice>1500</settlePrice>\n<settleMethodDiv>0</settleMethodDiv>\n<settleMethod>9</settleMethod>\n<statusInfo>4</statusInfo>\n<payWay>1</payWay>\n<crdCResCd>020200420010000</crdCResCd>\n</resultData>\n</return>\n"
    );

    // The test gateway's paths and the XP family: F01 authorises, F04 reports (escaped).
    let text = call(
        mock.addr,
        &post(
            "/test_gateway/xp/authXp.api",
            "function_div=F01&trader_code=123456789&order_no=XP-%3C1%3E&settle_price=800&card_no=3530111333300000",
        ),
    )
    .await;
    assert_eq!(elements(&text, "crdCResCd"), ["020200420010000"]);
    for path in ["/api/xp/tradeInfoXp", "/test_gateway/xp/tradeInfoXp.api"] {
        let text = call(
            mock.addr,
            &post(
                path,
                "function_div=F04&trader_code=123456789&order_no=XP-%3C1%3E",
            ),
        )
        .await;
        assert_eq!(elements(&text, "resultCount"), ["1"], "{text}");
        assert_eq!(elements(&text, "orderNo"), ["XP-&lt;1&gt;"]);
        // A card number starting 35 is JCB (3).
        assert_eq!(elements(&text, "settleMethod"), ["3"]);
        assert_eq!(elements(&text, "settlePrice"), ["800"]);
    }

    // H01: the gateway's address (a documentation address: clearly not real).
    assert_eq!(
        call(
            mock.addr,
            &post("/api/traderIp", "function_div=H01&trader_code=123456789")
        )
        .await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<ipAddress>203.0.113.10</ipAddress>\n</return>\n"
    );

    // E01: the slip URL.
    let text = call(
        mock.addr,
        &post(
            "/test_gateway/shipmentEntry.api",
            "function_div=E01&trader_code=123456789&order_no=ORDER-1&slip_no=123456789012",
        ),
    )
    .await;
    assert_eq!(
        elements(&text, "slipUrlPc"),
        ["https://stand-in-gateway.invalid/slip?order_no=ORDER-1"]
    );

    // Any other known function: a plain success.
    assert_eq!(
        call(mock.addr, &post("/api/cvs1", "function_div=B01")).await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n</return>\n"
    );

    // 後払い KAAAU0010 (credit request): accepted, 審査結果 0 (ご利用可).
    assert_eq!(
        call(
            mock.addr,
            &post(
                "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
                "ycfStrCode=12345678901&orderNo=ATO-1&requestDate=20200420&password=secret",
            ),
        )
        .await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results>\n<returnCode>0</returnCode>\n<returnDate>20200420010000</returnDate>\n<orderNo>ATO-1</orderNo>\n<result>0</result>\n<errors></errors>\n</results>\n"
    );
    mock.stop().await;
}

#[tokio::test]
async fn orders_are_remembered_per_trader_code_and_order_no() {
    let mock = StandIn::start(AT).await;
    let status = |text: &str| elements(text, "statusInfo");

    call(mock.addr, &a08("ORDER-1", "tokentokentoken1")).await;
    // A second authorisation of the same order number is refused (and spends no token).
    assert_eq!(
        call(mock.addr, &a08("ORDER-1", "tokentokentoken2")).await,
        refused("A082000003")
    );
    call(mock.addr, &a08("ORDER-2", "tokentokentoken2")).await;

    // E04 with two order numbers (one repeated): one row each, in request order.
    let text = call(
        mock.addr,
        &post(
            "/api/tradeInfo",
            "function_div=E04&trader_code=123456789&order_no=ORDER-2&order_no=ORDER-1&order_no=ORDER-2",
        ),
    )
    .await;
    assert_eq!(elements(&text, "resultCount"), ["2"]);
    assert_eq!(elements(&text, "orderNo"), ["ORDER-2", "ORDER-1"]);

    // A07 changes the amount; E04 shows it.
    let a07 = |price: &str| {
        post(
            "/api/creditChangePrice",
            &format!("function_div=A07&trader_code=123456789&order_no=ORDER-1&new_price={price}"),
        )
    };
    assert_eq!(
        elements(&call(mock.addr, &a07("1200")).await, "returnCode"),
        ["0"]
    );
    assert_eq!(call(mock.addr, &a07("12.5")).await, refused("A071010504"));
    let text = call(mock.addr, &e04("ORDER-1")).await;
    assert_eq!(elements(&text, "settlePrice"), ["1200"]);
    assert_eq!(status(&text), ["4"]);

    // E01 ships (30, with the slip number), E02 takes it back (4).
    let e01 = post(
        "/api/shipmentEntry",
        "function_div=E01&trader_code=123456789&order_no=ORDER-1&slip_no=123456789012",
    );
    let e02 = post(
        "/api/shipmentCancel",
        "function_div=E02&trader_code=123456789&order_no=ORDER-1",
    );
    call(mock.addr, &e01).await;
    let text = call(mock.addr, &e04("ORDER-1")).await;
    assert_eq!(status(&text), ["30"]);
    assert_eq!(elements(&text, "slipNo"), ["123456789012"]);
    call(mock.addr, &e02).await;
    assert_eq!(status(&call(mock.addr, &e04("ORDER-1")).await), ["4"]);
    assert_eq!(call(mock.addr, &e02).await, refused("E022009002"));

    // A06 cancels (40, with the date); a second cancel and later changes are refused.
    mock.clock.set(t("2020-04-20T01:30:00+09:00"));
    let a06 = post(
        "/test_gateway/creditCancel.api",
        "function_div=A06&trader_code=123456789&order_no=ORDER-1",
    );
    // The answer carries the order's new statusInfo in resultData.
    assert_eq!(
        call(mock.addr, &a06).await,
        format!(
            "{XML_DECL}<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420013000</returnDate>\n<resultData>\n<statusInfo>40</statusInfo>\n</resultData>\n</return>\n"
        )
    );
    let text = call(mock.addr, &e04("ORDER-1")).await;
    assert_eq!(status(&text), ["40"]);
    assert_eq!(elements(&text, "cancelDate"), ["20200420013000"]);
    assert_eq!(elements(&text, "settlePrice"), ["1200"]);
    mock.clock.set(t(AT));
    assert_eq!(call(mock.addr, &a06).await, refused("A062009002"));
    assert_eq!(call(mock.addr, &a07("100")).await, refused("A072009002"));
    assert_eq!(call(mock.addr, &e01).await, refused("E012009002"));
    // The other order is untouched.
    assert_eq!(status(&call(mock.addr, &e04("ORDER-2")).await), ["4"]);

    // Orders it never saw: the gateway's error shape, never a made-up row. Order numbers
    // are per trader_code.
    for request in [
        e04("ORDER-9"),
        post(
            "/api/tradeInfo",
            "function_div=E04&trader_code=987654321&order_no=ORDER-1",
        ),
        post(
            "/api/tradeInfo",
            "function_div=E04&trader_code=123456789&order_no=ORDER-1&order_no=ORDER-9",
        ),
    ] {
        assert_eq!(call(mock.addr, &request).await, refused("E042009001"));
    }
    assert_eq!(
        call(
            mock.addr,
            &post(
                "/api/creditCancel",
                "function_div=A06&trader_code=123456789&order_no=ORDER-9"
            )
        )
        .await,
        refused("A062009001")
    );
    assert_eq!(
        call(
            mock.addr,
            &post(
                "/api/xp/tradeInfoXp",
                "function_div=F04&trader_code=123456789&order_no=ORDER-9"
            )
        )
        .await,
        refused("F042009001")
    );

    // Missing fields, coded as the gateway codes A08's.
    for (body, code) in [
        ("function_div=E04&order_no=ORDER-1", "E041010201"),
        ("function_div=E04&trader_code=123456789", "E041010401"),
    ] {
        assert_eq!(
            call(mock.addr, &post("/api/tradeInfo", body)).await,
            refused(code)
        );
    }
    for (body, code) in [
        (
            "function_div=A08&trader_code=123456789&order_no=N-1&token=abcdefghijklmnop",
            "A081010501",
        ),
        (
            "function_div=A08&trader_code=123456789&order_no=N-1&settle_price=1",
            "A081011201",
        ),
        (
            "function_div=A08&trader_code=123456789&order_no=N-1&settle_price=1&token=short",
            "A081011202",
        ),
        (
            "function_div=A08&order_no=N-1&settle_price=1&token=abcdefghijklmnop",
            "A081010201",
        ),
    ] {
        assert_eq!(
            call(mock.addr, &post("/api/creditToken", body)).await,
            refused(code),
            "{body}"
        );
    }
    mock.stop().await;
}

#[tokio::test]
async fn tokens_are_single_use_and_strict_mode_takes_only_minted_ones() {
    // Lenient (the default): any 16-character token, once.
    let mock = StandIn::start(AT).await;
    call(mock.addr, &a08("T-1", "abcdefghijklmnop")).await;
    assert_eq!(
        call(mock.addr, &a08("T-2", "abcdefghijklmnop")).await,
        refused("A082000004")
    );
    mock.stop().await;

    // Strict: only what the libraries minted, within 30 minutes, once.
    let mock = StandIn::with_options(
        AT,
        GatewayOptions {
            strict_tokens: true,
            ..GatewayOptions::default()
        },
    )
    .await;
    assert_eq!(
        call(mock.addr, &a08("S-1", "abcdefghijklmnop")).await,
        refused("A082000004")
    );
    let mint = |path: &'static str| {
        let addr = mock.addr;
        async move {
            let res = raw(addr, &post(path, "trader_code=123456789")).await;
            assert_eq!(res.status, 200);
            assert!(from_stand_in(&res));
            // Libraries on merchants' pages read it across origins.
            assert_eq!(res.header("access-control-allow-origin"), Some("*"));
            let text = res.text();
            assert_eq!(elements(&text, "returnCode"), ["0"], "{text}");
            assert_eq!(elements(&text, "errorCode"), [""]);
            let token = elements(&text, "token").pop().unwrap();
            assert_eq!(token.len(), 16);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
            token
        }
    };
    let first = mint("/api/token/issue").await;
    let second = mint("/test_gateway/token/issue").await;
    assert_ne!(first, second);
    assert_eq!(
        elements(&call(mock.addr, &a08("S-1", &first)).await, "returnCode"),
        ["0"]
    );
    assert_eq!(
        call(mock.addr, &a08("S-2", &first)).await,
        refused("A082000004")
    );
    // 30 minutes later the second one has expired.
    mock.clock.advance(TimeDelta::minutes(30));
    assert_eq!(
        elements(&call(mock.addr, &a08("S-2", &second)).await, "errorCode"),
        ["A082000004"]
    );
    // Minting is a POST, as every gateway call.
    let res = raw(mock.addr, &get("/api/token/issue")).await;
    assert_eq!(elements(&res.text(), "errorCode"), ["Z012000001"]);
    mock.stop().await;
}

#[tokio::test]
async fn stored_cards_are_listed_changed_and_deleted() {
    let mock = StandIn::start(AT).await;
    let a03 = post(
        "/api/creditInfoGet",
        "function_div=A03&trader_code=123456789&member_id=M-1&authentication_key=k&check_sum=x",
    );
    assert_eq!(
        call(mock.addr, &a03).await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<cardUnit>0</cardUnit>\n</return>\n"
    );

    // The token library tells the stand-in the masked number, expiry and holder.
    let res = raw(
        mock.addr,
        &post(
            "/api/token/issue",
            "trader_code=123456789&member_id=M-1&masking_card_no=************1111&card_exp=1230&card_owner=TARO+YAMATO",
        ),
    )
    .await;
    let token = elements(&res.text(), "token").pop().unwrap();
    // opt_serv_div 01 (the older spelling of option_service_div) with a member_id stores
    // the card.
    call(
        mock.addr,
        &post(
            "/api/creditToken",
            &format!("function_div=A08&trader_code=123456789&order_no=C-1&settle_price=500&member_id=M-1&opt_serv_div=01&token={token}"),
        ),
    )
    .await;
    assert_eq!(
        call(mock.addr, &a03).await,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<cardUnit>1</cardUnit>\n<cardData>\n<cardCodeApi>9</cardCodeApi>\n<cardKey>1</cardKey>\n<maskingCardNo>************1111</maskingCardNo>\n<cardExp>1230</cardExp>\n<cardOwner>TARO YAMATO</cardOwner>\n<lastCreditDate>20200420010000</lastCreditDate>\n</cardData>\n</return>\n"
    );
    // A01 with a raw card number stores a second card, masked.
    call(
        mock.addr,
        &post(
            "/api/credit",
            "function_div=A01&trader_code=123456789&order_no=C-2&settle_price=500&member_id=M-1&opt_serv_div=01&card_no=5555555555554444&card_exp=0528&card_owner=HANAKO",
        ),
    )
    .await;
    let text = call(mock.addr, &a03).await;
    assert_eq!(elements(&text, "cardUnit"), ["2"]);
    assert_eq!(
        elements(&text, "maskingCardNo"),
        ["************1111", "************4444"]
    );
    assert!(!text.contains("5555555555554444"));
    assert_eq!(elements(&text, "cardCodeApi"), ["9", "10"]);

    // A04 changes what A03 answers; A05 deletes.
    call(
        mock.addr,
        &post(
            "/api/creditInfoUpdate",
            "function_div=A04&trader_code=123456789&member_id=M-1&card_key=1&card_exp=0131",
        ),
    )
    .await;
    assert_eq!(
        elements(&call(mock.addr, &a03).await, "cardExp"),
        ["0131", "0528"]
    );
    let a05 = post(
        "/api/creditInfoDelete",
        "function_div=A05&trader_code=123456789&member_id=M-1&card_key=1",
    );
    call(mock.addr, &a05).await;
    let text = call(mock.addr, &a03).await;
    assert_eq!(elements(&text, "cardUnit"), ["1"]);
    assert_eq!(elements(&text, "cardKey"), ["2"]);
    assert_eq!(call(mock.addr, &a05).await, refused("A052009003"));
    mock.stop().await;
}

#[tokio::test]
async fn past_the_bound_the_oldest_orders_are_forgotten() {
    let mock = StandIn::with_options(
        AT,
        GatewayOptions {
            max_orders: 2.try_into().unwrap(),
            ..GatewayOptions::default()
        },
    )
    .await;
    for (n, token) in [
        ("B-1", "tokentokentoken1"),
        ("B-2", "tokentokentoken2"),
        ("B-3", "tokentokentoken3"),
    ] {
        call(mock.addr, &a08(n, token)).await;
    }
    assert_eq!(call(mock.addr, &e04("B-1")).await, refused("E042009001"));
    for n in ["B-2", "B-3"] {
        assert_eq!(
            elements(&call(mock.addr, &e04(n)).await, "statusInfo"),
            ["4"]
        );
    }
    mock.stop().await;
}

#[tokio::test]
async fn a_state_file_keeps_orders_and_spent_tokens_across_restarts() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stand-in-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let options = || GatewayOptions {
        state_file: Some(state.clone()),
        ..GatewayOptions::default()
    };

    let mock = StandIn::with_options(AT, options()).await;
    call(mock.addr, &a08("P-1", "persistpersist01")).await;
    call(
        mock.addr,
        &post(
            "/api/creditCancel",
            "function_div=A06&trader_code=123456789&order_no=P-1",
        ),
    )
    .await;
    // Saved before the answer went out; written whole, no temporary file left beside it.
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["orders"][0]["status"], 40);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["state.json"]);
    mock.stop().await;

    let mock = StandIn::with_options(AT, options()).await;
    let text = call(mock.addr, &e04("P-1")).await;
    assert_eq!(elements(&text, "statusInfo"), ["40"]);
    assert_eq!(
        call(mock.addr, &a08("P-2", "persistpersist01")).await,
        refused("A082000004")
    );
    assert_eq!(
        call(mock.addr, &a08("P-1", "persistpersist02")).await,
        refused("A082000003")
    );
    mock.stop().await;

    // A file that is not a state file stops the stand-in from starting.
    std::fs::write(&state, "{\"orders\": 1}").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = gateway::serve(listener, options(), std::future::ready(()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("state.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stand_in_token_libraries_are_served() {
    let mock = StandIn::start(AT).await;
    for (path, modal, issue) in [
        (
            "/api/token/js/embeddedTokenLib.js",
            false,
            "/api/token/issue",
        ),
        ("/api/token/js/tokenlib.js", true, "/api/token/issue"),
        (
            "/test_gateway/token/js/embeddedTokenLib.js",
            false,
            "/test_gateway/token/issue",
        ),
        (
            "/test_gateway/token/js/tokenlib.js",
            true,
            "/test_gateway/token/issue",
        ),
    ] {
        let res = raw(mock.addr, &get(path)).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("application/javascript; charset=UTF-8")
        );
        assert!(from_stand_in(&res));
        let js = res.text();
        assert!(js.contains("STAND-IN"), "{js}");
        assert!(js.contains("lib.createToken = createToken;"), "{js}");
        assert!(js.contains(&format!("var MODAL = {modal};")), "{path}");
        assert!(
            js.contains(&format!("var ISSUE_PATH = \"{issue}\";")),
            "{path}"
        );
        for placeholder in ["__MODAL__", "__ISSUE_PATH__", "__TOKEN_FORM__"] {
            assert!(!js.contains(placeholder), "{placeholder} left in {path}");
        }
        assert!(js.contains("function startTokenForm(onContinue)"));
        assert!(js.contains("\"webcollect-token\""));
    }
    // Scripts are fetched, never posted to.
    let res = raw(mock.addr, &post("/api/token/js/tokenlib.js", "a=1")).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    mock.stop().await;
}

/// A merchant's notification receiver that records every request body.
async fn receiver() -> (Upstream, Arc<Mutex<Vec<(String, String)>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let content_type = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            seen.lock()
                .unwrap()
                .push((content_type, String::from_utf8(body.to_vec()).unwrap()));
            Response::new(full("OK"))
        }
    })
    .await;
    (upstream, bodies)
}

/// Waits (bounded) until `bodies` holds `n` notifications.
async fn notifications(bodies: &Mutex<Vec<(String, String)>>, n: usize) -> Vec<(String, String)> {
    eventually(
        Duration::from_secs(10),
        &format!("notification {n}"),
        || async { bodies.lock().unwrap().len() >= n },
    )
    .await;
    bodies.lock().unwrap().clone()
}

#[tokio::test]
async fn link_settlement_sends_a_payment_result_notification() {
    let (merchant, bodies) = receiver().await;
    let mock = StandIn::with_options(
        "2020-04-20T01:30:00+09:00",
        GatewayOptions {
            notify_url: Some(format!("{}/yamato/notify", merchant.url())),
            ..GatewayOptions::default()
        },
    )
    .await;

    // The merchant's checkout form, as a browser posts it from a Shift_JIS page: the goods
    // name 「お茶」 is %82%A8%92%83.
    let checkout = "TRS_MAP=V_W02&trader_code=123456789&order_no=ORDER-7&goods_name=%82%A8%92%83&settle_price=1500&buyer_name_kanji=%8ER%93c&success_url=https%3A%2F%2Fshop.example%2Fdone&failure_url=https%3A%2F%2Fshop.example%2Ffail&cancel_url=https%3A%2F%2Fshop.example%2Fcart";
    let landing = raw(
        mock.addr,
        &post("/webcollect/settleSelectAction.gw", checkout),
    )
    .await;
    assert_eq!(landing.status, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert!(from_stand_in(&landing));
    let html = landing.text();
    assert!(html.contains("stand-in gateway, NOT Yamato"), "{html}");
    assert!(html.contains("<dd>ORDER-7</dd>"), "{html}");
    assert!(html.contains("<dd>お茶</dd>"), "{html}");
    assert!(html.contains("<dd>1500円</dd>"), "{html}");
    assert!(!html.contains('\u{FFFD}'), "garbled: {html}");
    assert!(
        html.contains("<input type=\"hidden\" name=\"mock_step\" value=\"settle\">"),
        "{html}"
    );
    assert!(
        html.contains("<input type=\"hidden\" name=\"goods_name\" value=\"お茶\">"),
        "{html}"
    );
    assert!(
        html.contains(
            "<input type=\"hidden\" name=\"success_url\" value=\"https://shop.example/done\">"
        ),
        "{html}"
    );
    assert!(html.contains("<option value=\"14\">"), "{html}");
    assert!(
        html.contains("href=\"https://shop.example/cart\""),
        "{html}"
    );
    assert!(!html.contains("{{"), "{html}");
    // Showing the page settles nothing.
    assert!(
        call(mock.addr, &e04("ORDER-7"))
            .await
            .contains("E042009001")
    );

    // The buyer presses 決済する, having picked 楽天カード (settle_method 14, the notice's new
    // value). The stand-in's own page posts back in UTF-8.
    mock.clock.set(t("2020-04-20T01:31:00+09:00"));
    let settle = "mock_step=settle&trader_code=123456789&order_no=ORDER-7&goods_name=%E3%81%8A%E8%8C%B6&settle_price=1500&success_url=https%3A%2F%2Fshop.example%2Fdone&settle_method=14";
    let done = raw(
        mock.addr,
        &post("/webcollect/settleSelectAction.gw", settle),
    )
    .await;
    assert_eq!(done.status, 200);
    assert!(from_stand_in(&done));
    let html = done.text();
    assert!(html.contains("決済が完了しました"), "{html}");
    assert!(html.contains("<dd>お茶</dd>"), "{html}");
    assert!(
        html.contains("決済結果通知を加盟店へ送信しています"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://shop.example/done\" id=\"mock-return\">"),
        "{html}"
    );

    // The notification arrives in the background.
    assert_eq!(
        notifications(&bodies, 1).await,
        [(
            "application/x-www-form-urlencoded".to_string(),
            "trader_code=123456789&order_no=ORDER-7&settle_price=1500&settle_date=20200420013100&settle_result=1&settle_detail=4&settle_method=14".to_string()
        )]
    );
    let seen = merchant.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/yamato/notify");

    // The order is now known: E04 reports the link settlement, card brand included.
    let text = call(mock.addr, &e04("ORDER-7")).await;
    assert_eq!(elements(&text, "statusInfo"), ["4"]);
    assert_eq!(elements(&text, "settleMethod"), ["14"]);
    assert_eq!(elements(&text, "settleDate"), ["20200420013100"]);

    // Settling the same order again is refused, and notifies nobody.
    let again = raw(
        mock.addr,
        &post("/webcollect/settleSelectAction.gw", settle),
    )
    .await;
    assert_eq!(again.status, 200);
    assert!(again.text().contains("受付番号重複"), "{}", again.text());

    // A GET never settles, and an unknown settle_method falls back to VISA (9).
    let res = raw(
        mock.addr,
        &get(
            "/test_gateway/settleSelectAction.gw?mock_step=settle&trader_code=123456789&order_no=X",
        ),
    )
    .await;
    assert!(res.text().contains("決済する（スタンドイン）"));
    let res = raw(
        mock.addr,
        &post(
            "/test_gateway/settleSelectAction.gw",
            "mock_step=settle&trader_code=123456789&order_no=ORDER-8&settle_price=1&settle_method=99",
        ),
    )
    .await;
    assert!(res.text().contains("settle_method: 9"));
    let got = notifications(&bodies, 2).await;
    assert!(got[1].1.ends_with("&settle_method=9"));
    assert_eq!(got.len(), 2, "the refused settlement notified: {got:?}");
    assert_eq!(merchant.seen().len(), 2);
    mock.stop().await;
}

#[tokio::test]
async fn without_a_notify_url_settlement_notifies_nobody() {
    let mock = StandIn::start("2020-04-20T01:30:00+09:00").await;
    let res = raw(
        mock.addr,
        &post(
            "/webcollect/settleSelectAction.gw",
            "mock_step=settle&trader_code=123456789&order_no=1&settle_price=100",
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("送信先が設定されていません"));
    // Without an order number there is nothing to settle.
    let res = raw(
        mock.addr,
        &post(
            "/webcollect/settleSelectAction.gw",
            "mock_step=settle&settle_price=100",
        ),
    )
    .await;
    assert!(res.text().contains("id=\"mock-refused\""), "{}", res.text());
    mock.stop().await;
}

#[tokio::test]
async fn the_stand_in_serves_a_plain_admin_screen() {
    let mock = StandIn::start(AT).await;
    let res = raw(mock.addr, &get("/webcollect-admin/menu")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/html; charset=UTF-8"));
    assert!(from_stand_in(&res));
    let html = res.text();
    assert!(html.contains("加盟店管理画面"), "{html}");
    assert!(
        html.contains("<dd id=\"mock-admin-path\">/webcollect-admin/menu</dd>"),
        "{html}"
    );
    assert!(!html.contains("{{"), "{html}");
    let res = raw(mock.addr, &post("/webcollect-admin/menu", "a=1")).await;
    assert_eq!(res.status, 405);
    mock.stop().await;
}

const LINK: &str = "TRS_MAP=V_W02&trader_code=123456789&order_no=ORDER-1&goods_name=Tea&settle_price=1500&success_url=https%3A%2F%2Fshop.example%2Fdone";

/// End to end: a merchant-like client runs A08, E04, F04, a link-method POST and a token
/// library fetch through the shim (on the shipped drill config) in front of the stand-in,
/// before, during and after the drill window, and sees success, maintenance, success.
#[tokio::test]
async fn merchant_sees_success_then_maintenance_then_success_through_the_shim() {
    let mock = StandIn::start(AT).await;
    // Real time is 2026; drill.toml's clock starts at 2020-04-20 01:00 JST and runs 60×.
    let shim = TestShim::start(&drill_config(&mock.url()), t("2026-11-27T12:00:00Z")).await;

    let merchant = |order_no: &'static str| {
        let addr = shim.addr;
        async move {
            let a08 = raw(addr, &a08(order_no, &format!("{order_no:0>16}"))).await;
            let e04 = raw(addr, &e04(order_no)).await;
            let f04 = raw(
                addr,
                &post(
                    "/test_gateway/xp/tradeInfoXp.api",
                    &format!("function_div=F04&trader_code=123456789&order_no={order_no}"),
                ),
            )
            .await;
            let link = raw(addr, &post("/webcollect/settleSelectAction.gw", LINK)).await;
            let token = raw(addr, &get("/api/token/js/embeddedTokenLib.js")).await;
            [a08, e04, f04, link, token]
        }
    };
    let passes = |phase: &str, [a08, e04, f04, link, token]: &[RawResponse; 5]| {
        for res in [a08, e04, f04, link, token] {
            assert_eq!(res.status, 200, "{phase}: {}", res.text());
            assert!(from_stand_in(res), "{phase}: not from the stand-in");
            assert_eq!(res.header("x-webcollect-shim"), None, "{phase}");
        }
        assert_eq!(elements(&a08.text(), "returnCode"), ["0"], "{phase}");
        assert_eq!(elements(&a08.text(), "crdCResCd").len(), 1, "{phase}");
        assert_eq!(elements(&e04.text(), "resultCount"), ["1"], "{phase}");
        assert_eq!(elements(&e04.text(), "statusInfo"), ["4"], "{phase}");
        assert_eq!(elements(&f04.text(), "settleMethod"), ["9"], "{phase}");
        assert!(link.text().contains("<dd>ORDER-1</dd>"), "{phase}");
        assert!(token.text().contains("STAND-IN"), "{phase}");
    };

    // 01:00 JST (drill): before the window, everything reaches the stand-in.
    passes("before", &merchant("BEFORE").await);

    // 90 real seconds later the drill clock reads 02:30 JST: inside the window.
    shim.clock.advance(TimeDelta::seconds(90));
    let [a08, e04, f04, link, token] = merchant("DURING").await;
    let maintenance_xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n";
    for res in [&a08, &e04, &f04] {
        assert_eq!(res.status, 200);
        assert!(
            !from_stand_in(res),
            "the stand-in was contacted during the window"
        );
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
        assert_eq!(res.text(), maintenance_xml);
    }
    assert_eq!(link.status, 503);
    assert!(!from_stand_in(&link));
    assert!(
        link.text()
            .contains("クロネコwebコレクト メンテナンスのお知らせ")
    );
    assert!(link.text().contains("4月20日(月) 2時00分～6時00分"));
    // 3h30m of drill time left at 60×: 210 real seconds.
    assert_eq!(link.header("retry-after"), Some("210"));
    assert_eq!(token.status, 200);
    assert!(!from_stand_in(&token));
    assert!(token.text().contains("Z01000000"));

    // The 後払い API is not in the notice's window: it still reaches the stand-in.
    let atobarai = raw(
        shim.addr,
        &post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "ycfStrCode=12345678901&orderNo=ATO-1",
        ),
    )
    .await;
    assert!(from_stand_in(&atobarai));
    assert_eq!(elements(&atobarai.text(), "returnCode"), ["0"]);

    // 210 more real seconds: 06:00 JST, the window's (exclusive) end. Success again.
    shim.clock.advance(TimeDelta::seconds(210));
    passes("after", &merchant("AFTER").await);

    shim.stop().await;
    mock.stop().await;
}

/// Every path family of kuroneko-webcollect.md §1 is routed by config/drill.toml to the
/// stand-in, which answers it (outside the window) in the gateway's shape.
#[tokio::test]
async fn drill_config_routes_every_path_family_to_the_stand_in() {
    let mock = StandIn::start(AT).await;
    let shim = TestShim::start(&drill_config(&mock.url()), t("2026-11-27T12:00:00Z")).await;
    for request in [
        post("/api/credit", "function_div=A01"),
        post("/api/creditToken", "function_div=A08"),
        post("/api/cvs1", "function_div=B01"),
        post("/api/e_money1", "function_div=C01"),
        post("/api/bank1", "function_div=D01"),
        post("/api/shipmentEntry", "function_div=E01"),
        post("/api/tradeInfo", "function_div=E04"),
        post("/api/regular", "function_div=G01"),
        post("/api/traderIp", "function_div=H01"),
        post("/api/paypaySettle", "function_div=L01"),
        post("/api/xp/authXp", "function_div=F01"),
        post("/api/xp/tradeInfoXp", "function_div=F04"),
        post("/api/token/issue", "trader_code=123456789"),
        post("/test_gateway/creditToken.api", "function_div=A08"),
        post("/test_gateway/tradeInfo.api", "function_div=E04"),
        post("/test_gateway/xp/shipmentEntryXp.api", "function_div=F02"),
        post("/test_gateway/token/issue", "trader_code=123456789"),
        post("/webcollect/settleSelectAction.gw", LINK),
        post("/test_gateway/settleSelectAction.gw", LINK),
        get("/api/token/js/embeddedTokenLib.js"),
        get("/api/token/js/tokenlib.js"),
        get("/test_gateway/token/js/embeddedTokenLib.js"),
        get("/test_gateway/token/js/tokenlib.js"),
        post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "orderNo=1",
        ),
        post(
            "/kuroneko-atobarai-api/KAAST0010APIAction_execute.action",
            "orderNo=1",
        ),
    ] {
        let res = raw(shim.addr, &request).await;
        let line =
            String::from_utf8_lossy(&request[..request.iter().position(|b| *b == b'\r').unwrap()])
                .into_owned();
        assert_eq!(res.status, 200, "{line}: {}", res.text());
        assert!(from_stand_in(&res), "{line}");
        // The gateway's own XML (後払い has its own shape, checked above).
        if res.text().contains("\n<return>\n") {
            // Bare calls are answered as the gateway answers them: success, or the error
            // for the field they lack; either way returnCode and errorCode agree.
            let text = res.text();
            let (code, error) = (elements(&text, "returnCode"), elements(&text, "errorCode"));
            assert!(
                (code == ["0"] && error == [""]) || (code == ["1"] && error[0].len() == 10),
                "{line}: {text}"
            );
        }
    }
    shim.stop().await;
    mock.stop().await;
}

#[tokio::test]
async fn reserve_1_answers_the_code_asked_for_byte_for_byte() {
    let mock = StandIn::start(AT).await;
    let asked = post(
        "/test_gateway/creditToken.api",
        "function_div=A08&trader_code=123456789&order_no=R-1&settle_price=1500&token=ReserveToken0001&reserve_1=A012060001",
    );
    assert_eq!(call(mock.addr, &asked).await, refused("A012060001"));
    // Nothing was stored: the order is unknown.
    assert_eq!(call(mock.addr, &e04("R-1")).await, refused("E042009001"));
    mock.stop().await;
}

/// `POST /_stand-in/reset` with these extra header lines.
fn reset(headers: &str) -> Vec<u8> {
    format!(
        "POST /_stand-in/reset HTTP/1.1\r\nHost: stand-in.test:8081\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_reset_forgets_orders_tokens_and_cards_and_truncates_the_state_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stand-in-reset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let options = || GatewayOptions {
        state_file: Some(state.clone()),
        ..GatewayOptions::default()
    };
    let mock = StandIn::with_options(AT, options()).await;
    let stored = post(
        "/api/creditToken",
        "function_div=A08&trader_code=123456789&order_no=RS-1&settle_price=500&member_id=M-1&option_service_div=01&token=resetresetreset1",
    );
    call(mock.addr, &stored).await;
    let a03 = post(
        "/api/creditInfoGet",
        "function_div=A03&trader_code=123456789&member_id=M-1",
    );
    assert_eq!(elements(&call(mock.addr, &a03).await, "cardUnit"), ["1"]);
    assert!(!std::fs::read(&state).unwrap().is_empty());

    // Only a POST, and never from another site's page.
    let res = raw(mock.addr, &get("/_stand-in/reset")).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("POST"));
    for origin in ["https://evil.example", "null", "http://stand-in.test:9999"] {
        let res = raw(mock.addr, &reset(&format!("Origin: {origin}\r\n"))).await;
        assert_eq!(res.status, 403, "{origin}");
        assert!(from_stand_in(&res));
    }
    assert_eq!(
        elements(&call(mock.addr, &e04("RS-1")).await, "statusInfo"),
        ["4"]
    );

    // From the stand-in's own admin screen (same origin), or a script (no Origin).
    for headers in ["Origin: http://stand-in.test:8081\r\n", ""] {
        let res = raw(mock.addr, &reset(headers)).await;
        assert_eq!(res.status, 200, "{headers:?}");
        assert_eq!(res.header("content-type"), Some("text/html; charset=UTF-8"));
        assert!(from_stand_in(&res));
        assert!(
            res.text().contains("id=\"mock-reset-done\""),
            "{}",
            res.text()
        );
        assert!(res.text().contains("href=\"/webcollect-admin/\""));
        assert_eq!(std::fs::read(&state).unwrap(), b"", "truncated");
    }
    // Everything is forgotten: the order, the card, the spent token.
    assert_eq!(call(mock.addr, &e04("RS-1")).await, refused("E042009001"));
    assert_eq!(elements(&call(mock.addr, &a03).await, "cardUnit"), ["0"]);
    assert_eq!(
        elements(&call(mock.addr, &stored).await, "returnCode"),
        ["0"]
    );
    mock.stop().await;

    // The state after the reset is saved as usual, and an emptied file starts an empty
    // stand-in.
    assert!(!std::fs::read(&state).unwrap().is_empty());
    std::fs::write(&state, b"").unwrap();
    let mock = StandIn::with_options(AT, options()).await;
    assert_eq!(call(mock.addr, &e04("RS-1")).await, refused("E042009001"));
    mock.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_admin_screen_has_a_reset_button_and_no_script() {
    let mock = StandIn::start(AT).await;
    let html = raw(mock.addr, &get("/webcollect-admin/")).await.text();
    assert!(
        html.contains("<form method=\"post\" action=\"/_stand-in/reset\">"),
        "{html}"
    );
    assert!(html.contains("<button type=\"submit\" id=\"mock-reset\">"));
    // A plain form: the page needs no script, inline or not.
    assert!(!html.contains("<script"), "{html}");
    mock.stop().await;
}

#[tokio::test]
async fn every_documented_test_card_is_declined_as_documented() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/qa-kit.md"),
    )
    .unwrap();
    // Rows of the table: | `4000000000000002` | `<function_div>2009101` | what |
    let rows: Vec<(String, String)> = docs
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let number = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let code = cells
                .next()?
                .strip_prefix("`<function_div>")?
                .strip_suffix('`')?;
            number
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| (number.to_string(), code.to_string()))
        })
        .collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    let mock = StandIn::start(AT).await;
    for (i, (number, tail)) in rows.iter().enumerate() {
        let a01 = post(
            "/api/credit",
            &format!(
                "function_div=A01&trader_code=123456789&order_no=TC-{i}&settle_price=500&card_no={number}&card_exp=1230"
            ),
        );
        assert_eq!(call(mock.addr, &a01).await, refused(&format!("A01{tail}")));
    }
    mock.stop().await;
}
