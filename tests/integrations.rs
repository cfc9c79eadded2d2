//! An integration suite that acts the way real merchant integrations do, without copying any
//! of their code: every answer is read by their rules (HTTP 200 required; success iff
//! `returnCode` is 0 and `errorCode` is empty; one `resultData` per requested order), the API
//! flow authorise → inquire → change amount → cancel → inquire runs through the shim on
//! config/drill.toml in front of the stand-in gateway outside a window and inside one, and
//! the token libraries' success paths run in real Chromium.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::TimeDelta;
use percent_encoding::percent_decode_str;
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use serde::Deserialize;

use webcollect_shim::qa::gateway::GatewayOptions;
use webcollect_shim::qa::notify::form_encode;

use crate::support::browser::*;
use crate::support::gateway::*;
use crate::support::*;

// === Reading answers as integrations do ===

/// What an integration makes of one API answer.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// HTTP 200, `returnCode` 0 and an empty `errorCode`.
    Success(Answer),
    /// HTTP 200 and anything else: the gateway refused, with this `errorCode`.
    Refused(String),
    /// Not HTTP 200: a transport failure; integrations do not read the body.
    Transport(u16),
}

/// A parsed answer: the root's leaf children, and its `resultData`/`cardData` groups.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answer {
    fields: BTreeMap<String, String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Answer {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no <{name}> in {self:?}"))
    }

    /// The E04/F04 rows, checked the way integrations index them: `resultCount` rows, one
    /// per requested order number, in request order.
    fn row_per_order(&self, order_nos: &[&str]) -> &[BTreeMap<String, String>] {
        assert_eq!(self.field("resultCount"), order_nos.len().to_string());
        assert_eq!(self.rows.len(), order_nos.len(), "{self:?}");
        for (row, order_no) in self.rows.iter().zip(order_nos) {
            assert_eq!(row.get("orderNo").map(String::as_str), Some(*order_no));
        }
        &self.rows
    }
}

fn read(res: &RawResponse) -> Reply {
    if res.status != 200 {
        return Reply::Transport(res.status);
    }
    let answer = parse(&res.text());
    let error_code = answer.fields.get("errorCode").cloned().unwrap_or_default();
    if answer.fields.get("returnCode").map(String::as_str) == Some("0") && error_code.is_empty() {
        Reply::Success(answer)
    } else {
        Reply::Refused(error_code)
    }
}

/// Parses the gateway's XML with a real XML parser (whitespace and entities as any client
/// sees them).
fn parse(xml: &str) -> Answer {
    let mut reader = Reader::from_str(xml);
    let mut answer = Answer::default();
    let mut depth = 0;
    let mut text = String::new();
    let mut in_group = false;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && matches!(e.name().as_ref(), "resultData" | "cardData") {
                    in_group = true;
                    answer.rows.push(BTreeMap::new());
                }
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&name).unwrap().to_string(),
                };
                text.push_str(&resolved);
            }
            Event::End(e) => {
                let name = e.name().as_ref().to_string();
                let value = std::mem::take(&mut text).trim().to_string();
                match (depth, in_group) {
                    (2, true) => in_group = false,
                    (2, false) => {
                        answer.fields.insert(name, value);
                    }
                    (3, true) => {
                        answer.rows.last_mut().unwrap().insert(name, value);
                    }
                    _ => {}
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    answer
}

/// A merchant's server-side client for one trader code and one host family.
struct Merchant {
    addr: SocketAddr,
    /// `/api/` (production) or `/test_gateway/` (the test gateway).
    test_gateway: bool,
}

const TRADER: &str = "123456789";

impl Merchant {
    fn path(&self, name: &str) -> String {
        if self.test_gateway {
            format!("/test_gateway/{name}.api")
        } else {
            format!("/api/{name}")
        }
    }

    async fn call(&self, name: &str, fields: &[(&str, &str)]) -> Reply {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        read(&raw(self.addr, &post(&self.path(name), &body)).await)
    }

    /// `name` for one order: `function_div`, `trader_code`, `order_no`, then `extra`.
    async fn on_order(
        &self,
        name: &str,
        function_div: &str,
        order_no: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut fields = vec![
            ("function_div", function_div),
            ("trader_code", TRADER),
            ("order_no", order_no),
        ];
        fields.extend_from_slice(extra);
        self.call(name, &fields).await
    }

    async fn authorise(&self, order_no: &str, token: &str, price: &str) -> Reply {
        let buyer = [
            ("device_div", "2"),
            ("settle_price", price),
            ("buyer_name_kanji", "山田 太郎"),
            ("buyer_tel", "0312345678"),
            ("buyer_email", "taro@example.com"),
            ("pay_way", "1"),
            ("token", token),
        ];
        self.on_order("creditToken", "A08", order_no, &buyer).await
    }

    async fn inquire(&self, order_no: &str) -> Reply {
        self.on_order("tradeInfo", "E04", order_no, &[]).await
    }

    async fn change_amount(&self, order_no: &str, price: &str) -> Reply {
        self.on_order(
            "creditChangePrice",
            "A07",
            order_no,
            &[("new_price", price)],
        )
        .await
    }

    async fn cancel(&self, order_no: &str) -> Reply {
        self.on_order("creditCancel", "A06", order_no, &[]).await
    }

    /// The one row E04 answers for `order_no`.
    async fn status_of(&self, order_no: &str) -> BTreeMap<String, String> {
        match self.inquire(order_no).await {
            Reply::Success(answer) => answer.row_per_order(&[order_no])[0].clone(),
            other => panic!("E04 {order_no}: {other:?}"),
        }
    }
}

fn success(reply: Reply, what: &str) -> Answer {
    match reply {
        Reply::Success(answer) => answer,
        other => panic!("{what}: {other:?}"),
    }
}

fn row<'a>(row: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    row.get(name)
        .unwrap_or_else(|| panic!("no {name} in {row:?}"))
}

/// Authorise → inquire → change amount → cancel → inquire, each step succeeding.
async fn full_flow(m: &Merchant, order_no: &str, token: &str) {
    let authorised = success(m.authorise(order_no, token, "1500").await, "A08");
    assert!(!authorised.field("crdCResCd").is_empty());
    let r = m.status_of(order_no).await;
    assert_eq!(row(&r, "statusInfo"), "4");
    assert_eq!(row(&r, "settlePrice"), "1500");
    assert_eq!(row(&r, "crdCResCd"), authorised.field("crdCResCd"));
    assert!(!row(&r, "settleMethod").is_empty());
    success(m.change_amount(order_no, "1200").await, "A07");
    // woo's admin reads the new state from the A06 answer's resultData.
    let cancelled = success(m.cancel(order_no).await, "A06");
    assert_eq!(cancelled.rows.len(), 1, "{cancelled:?}");
    assert_eq!(row(&cancelled.rows[0], "statusInfo"), "40");
    let r = m.status_of(order_no).await;
    assert_eq!(row(&r, "statusInfo"), "40");
    assert_eq!(row(&r, "settlePrice"), "1200");
}

/// A shim on config/drill.toml (drill clock at 2020-04-20 01:00 JST, 60×) in front of `mock`.
async fn drill_shim(mock: &StandIn) -> TestShim {
    TestShim::start(&drill_config(&mock.url()), t("2026-11-27T12:00:00Z")).await
}

#[test]
fn answers_are_read_by_the_integrations_rules() {
    let ok = |status: u16, body: &str| {
        read(&RawResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    };
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n  <returnCode>0</returnCode>\n  <errorCode/>\n  <returnDate>20200420010000</returnDate>\n  <resultCount>1</resultCount>\n  <resultData>\n    <orderNo>A&amp;B&#x31;</orderNo>\n  </resultData>\n</return>\n";
    let Reply::Success(answer) = ok(200, xml) else {
        panic!("{xml}");
    };
    assert_eq!(answer.row_per_order(&["A&B1"]).len(), 1);
    // Any status but 200 is a transport failure, whatever the body says.
    assert_eq!(ok(503, xml), Reply::Transport(503));
    // returnCode 0 with an errorCode is not a success (EC-CUBE 4 tests only errorCode).
    assert_eq!(
        ok(
            200,
            "<return><returnCode>0</returnCode><errorCode>Z01000000</errorCode></return>"
        ),
        Reply::Refused("Z01000000".into())
    );
    assert_eq!(
        ok(
            200,
            "<return><returnCode>1</returnCode><errorCode></errorCode></return>"
        ),
        Reply::Refused(String::new())
    );
}

#[tokio::test]
async fn the_api_flow_succeeds_outside_a_window_and_fails_with_the_maintenance_code_inside() {
    let mock = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = drill_shim(&mock).await;
    let production = Merchant {
        addr: shim.addr,
        test_gateway: false,
    };
    let test_gateway = Merchant {
        addr: shim.addr,
        test_gateway: true,
    };

    // 01:00 JST on the drill clock: through the shim to the stand-in, both host families.
    full_flow(&production, "INT-1", "IntegrationTok01").await;
    full_flow(&test_gateway, "INT-2", "IntegrationTok02").await;
    // What the gateway refuses, integrations see refused (HTTP 200, returnCode 1).
    assert_eq!(
        production
            .authorise("INT-1", "IntegrationTok03", "1500")
            .await,
        Reply::Refused("A082000003".into()),
        "a second authorisation of an order number"
    );
    assert_eq!(
        production
            .authorise("INT-3", "IntegrationTok01", "1500")
            .await,
        Reply::Refused("A082000004".into()),
        "a token spent already"
    );
    assert_eq!(
        production.inquire("NEVER-SEEN").await,
        Reply::Refused("E042009001".into())
    );

    // 02:30 JST: inside the window every step fails with the maintenance code, over HTTP 200.
    shim.clock.advance(TimeDelta::seconds(90));
    for m in [&production, &test_gateway] {
        let maintenance = Reply::Refused("Z01000000".into());
        assert_eq!(
            m.authorise("INT-4", "IntegrationTok04", "1500").await,
            maintenance
        );
        assert_eq!(m.inquire("INT-4").await, maintenance);
        assert_eq!(m.change_amount("INT-4", "1200").await, maintenance);
        assert_eq!(m.cancel("INT-4").await, maintenance);
        assert_eq!(m.inquire("INT-1").await, maintenance);
    }

    // 06:00 JST: the window is over. Nothing reached the stand-in meanwhile: INT-4 was never
    // authorised, and INT-1 is as it was.
    shim.clock.advance(TimeDelta::seconds(210));
    assert_eq!(
        production.inquire("INT-4").await,
        Reply::Refused("E042009001".into())
    );
    assert_eq!(
        row(&production.status_of("INT-1").await, "statusInfo"),
        "40"
    );
    full_flow(&production, "INT-4", "IntegrationTok04").await;

    shim.stop().await;
    mock.stop().await;
}

#[tokio::test]
async fn the_admin_screen_example_route_fronts_the_stand_in() {
    let mock = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let config = uncomment_block(&drill_config(&mock.url()), "[upstreams.admin_screen]");
    let shim = TestShim::start(&config, t("2026-11-27T12:00:00Z")).await;

    // Outside the window: the stand-in's plain admin page.
    let res = raw(shim.addr, &get("/webcollect-admin/")).await;
    assert_eq!(res.status, 200);
    assert!(from_stand_in(&res));
    assert!(res.text().contains("加盟店管理画面"), "{}", res.text());

    // Inside: the maintenance page instead, as the notice says.
    shim.clock.advance(TimeDelta::seconds(90));
    let res = raw(shim.addr, &get("/webcollect-admin/")).await;
    assert_eq!(res.status, 503);
    assert!(!from_stand_in(&res));
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert!(
        res.text()
            .contains("クロネコwebコレクト メンテナンスのお知らせ")
    );

    shim.stop().await;
    mock.stop().await;
}

// === Token libraries in Chromium ===

/// The fields of a form body as a merchant's server decodes them.
fn form_fields(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// A stand-in that accepts only tokens it minted, behind the drill shim before its window,
/// and a merchant whose pages load the libraries through the shim.
async fn strict_stack() -> (StandIn, TestShim, Upstream) {
    let mock = StandIn::with_options(
        "2020-04-20T01:00:00+09:00",
        GatewayOptions {
            strict_tokens: true,
            ..GatewayOptions::default()
        },
    )
    .await;
    let shim = drill_shim(&mock).await;
    let merchant = merchant(shim.url("")).await;
    (mock, shim, merchant)
}

/// The token authorises an A08 through the shim once; a made-up one never does.
async fn token_authorises_once(shim: &TestShim, order_no: &str, token: &str) {
    let m = Merchant {
        addr: shim.addr,
        test_gateway: false,
    };
    success(
        m.authorise(order_no, token, "1500").await,
        "A08 with the browser's token",
    );
    assert_eq!(
        m.authorise(&format!("{order_no}-again"), token, "1500")
            .await,
        Reply::Refused("A082000004".into())
    );
    assert_eq!(
        m.authorise(&format!("{order_no}-made-up"), "MadeUpToken00001", "1500")
            .await,
        Reply::Refused("A082000004".into()),
        "the stand-in runs with --strict-tokens"
    );
}

/// No request the page made carried the card number.
fn assert_card_number_stayed(tab: &Tab) {
    for request in &tab.requests {
        assert!(
            !format!("{request:?}").contains(CARD_NO),
            "a request carried the card number: {request:?}"
        );
    }
}

#[tokio::test]
async fn the_modal_library_issues_a_token_into_webcollect_token_and_calls_back_once() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let (mock, shim, merchant) = strict_stack().await;

    // A page without the hidden input (the library creates it), and one whose input has a
    // name but no id (the library gives it the id), through both host families.
    let mut orders_posted = 0;
    for (page, lib, order_no) in [
        ("/modal-bare", "/api/token/js/tokenlib.js", "MODAL-1"),
        ("/modal", "/test_gateway/token/js/tokenlib.js", "MODAL-2"),
    ] {
        let mut tab = chromium.tab(390, 844, true).await;
        let page_url = format!("{}{page}?lib={lib}", merchant.url());
        tab.goto(&page_url).await;
        tab.open_card_form().await;
        tab.fill_card_form().await;
        tab.press("カード情報入力完了").await;

        // The data-callback submits the order form: the merchant's server gets the token.
        let posted: String = tab
            .eval_across_navigation(
                "the order page",
                // Once the order page has loaded whole: read mid-parse, the `<pre>` can
                // be there with its text still to come (seen once under load).
                "(e => document.readyState === 'complete' && e ? e.textContent : null)\
                 (document.getElementById('received'))",
            )
            .await;
        let fields = form_fields(&posted);
        let token = fields
            .get("webcollect-token")
            .unwrap_or_else(|| panic!("{page}: no token posted: {posted}"));
        assert_eq!(token.chars().count(), 16, "{page}: {posted}");
        // What a plugin reading #webcollect-token found when the callback ran.
        assert_eq!(
            fields.get("seen").map(String::as_str),
            Some("hidden:webcollect-token:16"),
            "{page}"
        );
        orders_posted += 1;
        let orders = merchant
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.target == "/order")
            .count();
        assert_eq!(
            orders, orders_posted,
            "{page}: the callback ran more than once"
        );

        // The token was minted through the shim; the card number never left the page.
        let urls = tab.request_urls().await;
        let issue = if lib.starts_with("/test_gateway/") {
            shim.url("/test_gateway/token/issue")
        } else {
            shim.url("/api/token/issue")
        };
        assert!(urls.contains(&issue), "{urls:?}");
        assert_card_number_stayed(&tab);

        token_authorises_once(&shim, order_no, token).await;
        tab.page.close().await.unwrap();
    }
    chromium.close().await;
    shim.stop().await;
    mock.stop().await;
}

#[derive(Debug, Deserialize)]
struct Outcome {
    success: Vec<String>,
    failure: Vec<serde_json::Value>,
}

#[tokio::test]
async fn the_embedded_library_calls_success_with_a_token() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let (mock, shim, merchant) = strict_stack().await;
    for (lib, order_no) in [
        ("/api/token/js/embeddedTokenLib.js", "EMBEDDED-1"),
        ("/test_gateway/token/js/embeddedTokenLib.js", "EMBEDDED-2"),
    ] {
        let mut tab = chromium.tab(1280, 800, false).await;
        tab.goto(&format!("{}/embedded?lib={lib}", merchant.url()))
            .await;
        tab.wait_for("the success callback", "shimTest.success.length > 0")
            .await;
        // Let a stray second call show up before reading the outcome.
        tokio::time::sleep(QUIET).await;
        let outcome: Outcome = tab.eval("window.shimTest").await;
        assert!(outcome.failure.is_empty(), "{lib}: {outcome:?}");
        assert_eq!(outcome.success.len(), 1, "{lib}: {outcome:?}");
        let token = &outcome.success[0];
        assert_eq!(token.chars().count(), 16, "{lib}");
        tab.settle().await;
        assert_card_number_stayed(&tab);
        token_authorises_once(&shim, order_no, token).await;
        tab.page.close().await.unwrap();
    }
    chromium.close().await;
    shim.stop().await;
    mock.stop().await;
}

// === Stored cards (お預かりカード), the ways integrations ask for them ===

impl Merchant {
    /// A token minted the way the stand-in's libraries mint one: `createTokenInfo`'s card
    /// reduced to its first six digits and masked number, member fields for `optServDiv` 01.
    async fn mint(&self, fields: &[(&str, &str)]) -> String {
        let mut all = vec![("trader_code", TRADER)];
        all.extend_from_slice(fields);
        let body = all
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let path = if self.test_gateway {
            "/test_gateway/token/issue"
        } else {
            "/api/token/issue"
        };
        let answer = success(read(&raw(self.addr, &post(path, &body)).await), "mint");
        answer.field("token").to_string()
    }

    /// A03: the member's stored cards.
    async fn cards(&self, member_id: &str) -> Answer {
        let fields = [
            ("function_div", "A03"),
            ("trader_code", TRADER),
            ("member_id", member_id),
            ("authentication_key", "auth-key"),
            ("check_sum", "0"),
        ];
        success(self.call("creditInfoGet", &fields).await, "A03")
    }

    /// A05: deletes one stored card.
    async fn delete_card(&self, member_id: &str, card_key: &str) -> Reply {
        let fields = [
            ("function_div", "A05"),
            ("trader_code", TRADER),
            ("member_id", member_id),
            ("authentication_key", "auth-key"),
            ("check_sum", "0"),
            ("card_key", card_key),
        ];
        self.call("creditInfoDelete", &fields).await
    }

    /// An A08 with `token` and `extra` fields (member fields, for one integration).
    async fn authorise_with(&self, order_no: &str, token: &str, extra: &[(&str, &str)]) -> Reply {
        let mut fields = vec![
            ("device_div", "2"),
            ("settle_price", "1500"),
            ("pay_way", "1"),
            ("token", token),
        ];
        fields.extend_from_slice(extra);
        self.on_order("creditToken", "A08", order_no, &fields).await
    }
}

/// The one card the member has, as A03 lists it, checked field by field the way the
/// integrations read it.
fn the_one_card(answer: &Answer, brand: &str, last4: &str, stored_at: &str) -> String {
    assert_eq!(answer.field("cardUnit"), "1", "{answer:?}");
    assert_eq!(answer.rows.len(), 1, "{answer:?}");
    let card = &answer.rows[0];
    assert_eq!(row(card, "cardCodeApi"), brand);
    assert_eq!(row(card, "maskingCardNo"), format!("************{last4}"));
    assert_eq!(row(card, "cardExp"), "1230");
    assert_eq!(row(card, "cardOwner"), "TARO YAMATO");
    assert_eq!(row(card, "lastCreditDate"), stored_at);
    row(card, "cardKey").to_string()
}

/// Pays `order_no` (already authorised with the stored card): E04 shows the stored card's
/// brand and the member.
async fn paid_with_the_stored_card(m: &Merchant, order_no: &str, brand: &str, member_id: &str) {
    let r = m.status_of(order_no).await;
    assert_eq!(row(&r, "statusInfo"), "4");
    assert_eq!(row(&r, "settleMethod"), brand);
    assert_eq!(row(&r, "memberId"), member_id);
}

/// Deletes the card and lists again: no card left; deleting again is refused.
async fn delete_and_list_again(m: &Merchant, member_id: &str, card_key: &str) {
    success(m.delete_card(member_id, card_key).await, "A05");
    let answer = m.cards(member_id).await;
    assert_eq!(answer.field("cardUnit"), "0");
    assert!(answer.rows.is_empty());
    assert_eq!(
        m.delete_card(member_id, card_key).await,
        Reply::Refused("A052009003".into())
    );
}

#[tokio::test]
async fn each_integrations_stored_card_flow_runs_through_the_shim() {
    let mock = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = drill_shim(&mock).await;
    let production = Merchant {
        addr: shim.addr,
        test_gateway: false,
    };
    let test_gateway = Merchant {
        addr: shim.addr,
        test_gateway: true,
    };
    let stored_at = "20200420010000";
    let paid_at = "20200420010500";

    // taro: A01 with member_id and option_service_div=01 stores the card; an A01 with its
    // card_key (and no card number) pays with it.
    let member = [
        ("member_id", "TARO-1"),
        ("option_service_div", "01"),
        ("authentication_key", "auth-key"),
        ("check_sum", "0"),
    ];
    let mut a01 = vec![
        ("device_div", "2"),
        ("settle_price", "1500"),
        ("pay_way", "1"),
        ("card_no", "4111111111111111"),
        ("card_exp", "1230"),
        ("card_owner", "TARO YAMATO"),
        ("security_code", "123"),
    ];
    a01.extend_from_slice(&member);
    success(
        production.on_order("credit", "A01", "TARO-O1", &a01).await,
        "A01",
    );
    let key = the_one_card(&production.cards("TARO-1").await, "9", "1111", stored_at);
    mock.clock.advance(TimeDelta::minutes(5));
    let mut again = vec![("settle_price", "1500"), ("card_key", key.as_str())];
    again.extend_from_slice(&member);
    success(
        production
            .on_order("credit", "A01", "TARO-O2", &again)
            .await,
        "A01 with the stored card",
    );
    paid_with_the_stored_card(&production, "TARO-O2", "9", "TARO-1").await;
    the_one_card(&production.cards("TARO-1").await, "9", "1111", paid_at);
    delete_and_list_again(&production, "TARO-1", &key).await;

    // woo (production) and ecc4 (test gateway): the token is minted with optServDiv 01 and
    // memberId; the A08 that spends it carries no member fields.
    for (m, member_id, bin, last4, brand) in [
        (&production, "WOO-1", "411111", "1111", "9"),
        (&test_gateway, "ECC4-1", "555555", "4444", "10"),
    ] {
        mock.clock.set(t("2020-04-20T01:00:00+09:00"));
        let masked = format!("************{last4}");
        let card = [
            ("card_bin", bin),
            ("masking_card_no", masked.as_str()),
            ("member_id", member_id),
            ("card_exp", "1230"),
            ("card_owner", "TARO YAMATO"),
        ];
        let token = m.mint(&card).await;
        let first = format!("{member_id}-O1");
        success(m.authorise_with(&first, &token, &[]).await, "A08");
        let key = the_one_card(&m.cards(member_id).await, brand, last4, stored_at);
        // Paying again: createToken with the member and the stored card's cardKey.
        mock.clock.advance(TimeDelta::minutes(5));
        let token = m
            .mint(&[("member_id", member_id), ("card_key", key.as_str())])
            .await;
        let second = format!("{member_id}-O2");
        success(
            m.authorise_with(&second, &token, &[]).await,
            "A08 with the stored card",
        );
        paid_with_the_stored_card(m, &second, brand, member_id).await;
        the_one_card(&m.cards(member_id).await, brand, last4, paid_at);
        delete_and_list_again(m, member_id, &key).await;
    }

    // cscart: the token carries no member; the A08 carries member_id, authentication_key and
    // check_sum (register_card_info).
    mock.clock.set(t("2020-04-20T01:00:00+09:00"));
    let member = [
        ("member_id", "CSCART-1"),
        ("authentication_key", "auth-key"),
        ("check_sum", "0"),
    ];
    let token = production
        .mint(&[
            ("card_bin", "353011"),
            ("masking_card_no", "************0000"),
        ])
        .await;
    success(
        production
            .authorise_with("CSCART-O1", &token, &member)
            .await,
        "A08",
    );
    let answer = production.cards("CSCART-1").await;
    assert_eq!(answer.field("cardUnit"), "1");
    assert_eq!(row(&answer.rows[0], "cardCodeApi"), "3", "JCB");
    let key = row(&answer.rows[0], "cardKey").to_string();
    let token = production.mint(&[("card_key", key.as_str())]).await;
    success(
        production
            .authorise_with("CSCART-O2", &token, &member)
            .await,
        "A08 with the stored card",
    );
    paid_with_the_stored_card(&production, "CSCART-O2", "3", "CSCART-1").await;
    delete_and_list_again(&production, "CSCART-1", &key).await;

    // A stored card's key never pays for another member, and an A08 that says "00" stores
    // nothing.
    assert_eq!(
        production
            .authorise_with(
                "OTHER-O1",
                &production.mint(&[("card_key", "1")]).await,
                &[("member_id", "SOMEONE-ELSE")]
            )
            .await,
        Reply::Refused("A082009003".into())
    );
    let token = production.mint(&[("member_id", "NONE-1")]).await;
    success(
        production
            .authorise_with("NONE-O1", &token, &[("option_service_div", "00")])
            .await,
        "A08 without the option service",
    );
    assert_eq!(production.cards("NONE-1").await.field("cardUnit"), "0");

    shim.stop().await;
    mock.stop().await;
}

// === Declines on request ===

#[tokio::test]
async fn reserve_1_and_test_card_numbers_decline_through_the_shim_and_store_nothing() {
    let mock = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = drill_shim(&mock).await;
    let m = Merchant {
        addr: shim.addr,
        test_gateway: false,
    };

    // reserve_1 holding a 10-character code: that code, returnCode 1, HTTP 200; the order is
    // not authorised and the token not spent.
    let asked = [
        ("reserve_1", "A012060001"),
        ("member_id", "R-1"),
        ("option_service_div", "01"),
    ];
    assert_eq!(
        m.authorise_with("DECLINE-1", "ReserveToken0001", &asked)
            .await,
        Reply::Refused("A012060001".into())
    );
    assert_eq!(
        m.inquire("DECLINE-1").await,
        Reply::Refused("E042009001".into())
    );
    assert_eq!(m.cards("R-1").await.field("cardUnit"), "0");
    success(
        m.authorise("DECLINE-1", "ReserveToken0001", "1500").await,
        "the same order and token without reserve_1",
    );
    // On any function: a cancel asked to fail leaves the order authorised.
    assert_eq!(
        m.on_order(
            "creditCancel",
            "A06",
            "DECLINE-1",
            &[("reserve_1", "Z010000000")]
        )
        .await,
        Reply::Refused("Z010000000".into())
    );
    assert_eq!(row(&m.status_of("DECLINE-1").await, "statusInfo"), "4");
    // Anything else in reserve_1 is just a reserve value.
    success(
        m.authorise_with("DECLINE-2", "ReserveToken0002", &[("reserve_1", "memo")])
            .await,
        "A08 with a reserve value",
    );

    // Test card numbers: on A01 by the number, on A08 by the token minted for it.
    for (number, tail) in [
        ("4000000000000002", "2009101"),
        ("4000000000000069", "2009102"),
        ("4000000000003220", "2009103"),
        ("4000000000009995", "2009104"),
        ("4000000000000127", "2009105"),
    ] {
        let order_no = format!("CARD-{number}");
        let a01 = [
            ("settle_price", "1500"),
            ("card_no", number),
            ("card_exp", "1230"),
            ("member_id", "T-1"),
            ("option_service_div", "01"),
        ];
        assert_eq!(
            m.on_order("credit", "A01", &order_no, &a01).await,
            Reply::Refused(format!("A01{tail}")),
            "{number}"
        );
        let masked = format!("************{}", &number[12..]);
        let token = m
            .mint(&[("card_bin", &number[..6]), ("masking_card_no", &masked)])
            .await;
        assert_eq!(
            m.authorise_with(&order_no, &token, &[]).await,
            Reply::Refused(format!("A08{tail}")),
            "{number}"
        );
        assert_eq!(
            m.inquire(&order_no).await,
            Reply::Refused("E042009001".into()),
            "{number}: nothing stored"
        );
    }
    assert_eq!(m.cards("T-1").await.field("cardUnit"), "0");
    // The same BIN with another last four authorises.
    let token = m
        .mint(&[
            ("card_bin", "400000"),
            ("masking_card_no", "************0077"),
        ])
        .await;
    success(m.authorise_with("CARD-OK", &token, &[]).await, "A08");

    shim.stop().await;
    mock.stop().await;
}

// === A base URL written with a trailing slash ===

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_gets_what_the_real_night_would() {
    let mock = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = drill_shim(&mock).await;
    // "http://shim:8080/" + "/api/creditToken", as several integrations build their URLs.
    let a08 = |order_no: &str, token: &str| {
        post(
            "//api/creditToken",
            &format!(
                "function_div=A08&trader_code={TRADER}&order_no={order_no}&settle_price=1500&token={token}"
            ),
        )
    };

    // Outside the window the stand-in answers, as the gateway's server (which merges the
    // slashes) would.
    let res = raw(shim.addr, &a08("SLASH-1", "SlashSlashToken1")).await;
    assert!(from_stand_in(&res), "{}", res.text());
    success(read(&res), "A08 on //api/creditToken");
    assert_eq!(row(&m(&shim).status_of("SLASH-1").await, "statusInfo"), "4");

    // Inside it: the maintenance XML, HTTP 200, not a 400 text/plain body that an XML
    // client cannot read.
    shim.clock.advance(TimeDelta::seconds(90));
    let res = raw(shim.addr, &a08("SLASH-2", "SlashSlashToken2")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(read(&res), Reply::Refused("Z01000000".into()));

    // After it, SLASH-2 was never seen by the stand-in.
    shim.clock.advance(TimeDelta::seconds(210));
    assert_eq!(
        m(&shim).inquire("SLASH-2").await,
        Reply::Refused("E042009001".into())
    );
    shim.stop().await;
    mock.stop().await;
}

/// A production-family merchant through `shim`.
fn m(shim: &TestShim) -> Merchant {
    Merchant {
        addr: shim.addr,
        test_gateway: false,
    }
}
