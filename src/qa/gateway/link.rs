//! The link method's hosted page (kuroneko-webcollect.md §2, §6): the merchant's checkout
//! form arrives (in Shift_JIS, as real checkout pages post it), the page shows the order, and
//! its settle step authorises the order (E04 then reports it) and sends the payment-result
//! notification to `--notify-url` in the background, the way the gateway does.

use http::StatusCode;

use super::form::Form;
use super::orders::{Order, status};
use super::page::{fill, page};
use super::store::Keyed as _;
use super::{Gateway, html};
use crate::qa::notify::{self, Notification};
use crate::response::Body;
use crate::response::page::html_escape;

const LANDING: &str = include_str!("../../../assets/qa/link.html");
const DONE: &str = include_str!("../../../assets/qa/done.html");
const REFUSED: &str = include_str!("../../../assets/qa/refused.html");

/// Card brands offered on the settle step (`settle_method` codes; 14 is the value the 2020
/// notice adds, so merchants can see it arrive in a notification).
const SETTLE_METHODS: &[(&str, &str)] = &[
    ("9", "VISA"),
    ("10", "MASTER"),
    ("3", "JCB"),
    ("12", "AMEX"),
    ("2", "Diners"),
    ("14", "楽天カード"),
];

/// Merchant fields carried from the landing page to the settle step.
const CARRIED: &[&str] = &[
    "trader_code",
    "order_no",
    "goods_name",
    "settle_price",
    "success_url",
    "failure_url",
    "cancel_url",
];

/// The landing page (GET or POST), or with `mock_step=settle` on a POST, the settle step.
pub(crate) async fn respond(gw: &Gateway, form: &Form, post: bool) -> http::Response<Body> {
    // Only a POST settles: a GET must have no side effects.
    if post && form.get("mock_step") == Some("settle") {
        return settle(gw, form).await;
    }
    html(StatusCode::OK, landing_page(form))
}

async fn settle(gw: &Gateway, form: &Form) -> http::Response<Body> {
    let settle_method = form
        .get("settle_method")
        .filter(|m| SETTLE_METHODS.iter().any(|(code, _)| code == m))
        .unwrap_or("9");
    let date = super::jst(gw.clock.now());
    let (Some(trader_code), Some(order_no)) = (form.get("trader_code"), form.get("order_no"))
    else {
        return refused(form, "受付番号なし", "加盟店コードと受付番号が必要です。");
    };
    let Some(settle_price) = form.get("settle_price").and_then(|p| p.parse::<u64>().ok()) else {
        return refused(form, "決済金額誤り", "決済金額が正しくありません。");
    };
    let order = Order {
        trader_code: trader_code.to_string(),
        order_no: order_no.to_string(),
        device_div: "2".to_string(),
        settle_date: date.clone(),
        settle_price,
        settle_method: settle_method.to_string(),
        status: status::AUTHORISED,
        member_id: None,
        pay_way: "1".to_string(),
        approval: format!("0{date}"),
        slip_no: None,
        scheduled_shipping_date: None,
        cancel_date: None,
    };
    let recorded = gw
        .store
        .write(|s| {
            if s.orders.contains(&order.key()) {
                return Err(());
            }
            s.orders.insert(order);
            Ok(())
        })
        .await;
    if recorded.is_err() {
        // The gateway takes an order number once; nothing is notified.
        return refused(form, "受付番号重複", "この受付番号は決済済みです。");
    }
    let n = Notification {
        trader_code: trader_code.to_string(),
        order_no: order_no.to_string(),
        settle_price: settle_price.to_string(),
        settle_date: date,
        settle_result: "1".to_string(),
        settle_detail: status::AUTHORISED.to_string(),
        settle_method: settle_method.to_string(),
    };
    let notified = match &gw.notify_url {
        Some(url) => {
            send_in_background(url.clone(), gw.notify_policy, n);
            "決済結果通知を加盟店へ送信しています。"
        }
        None => "決済結果通知の送信先が設定されていません（--notify-url）。",
    };
    let content = fill(
        DONE,
        &[
            ("summary", &summary(form)),
            ("settle_method", &html_escape(settle_method)),
            ("notified", notified),
            (
                "return",
                &link(form.get("success_url"), "mock-return", "ショップに戻る"),
            ),
        ],
    );
    html(
        StatusCode::OK,
        page("決済が完了しました（スタンドイン）", &content),
    )
}

/// Sends `n` with the gateway's retries, in the background as the gateway does: the buyer's
/// page does not wait for the merchant's receiver (which may take 15 s per attempt).
fn send_in_background(url: String, policy: notify::RetryPolicy, n: Notification) {
    tokio::spawn(async move {
        let report = |a: &notify::Attempt| {
            tracing::info!(attempt = %a, "Mock gateway notification attempt.");
        };
        match notify::send(&url, &n, policy, report).await {
            Ok(attempts) if attempts.last().is_some_and(notify::Attempt::accepted) => {}
            Ok(_) => tracing::warn!("Mock gateway notification was not accepted."),
            Err(err) => tracing::warn!(error = %err, "Mock gateway notification not sent."),
        }
    });
}

/// The settle step refused: HTTP 200 like the gateway's own error pages, a link back.
fn refused(form: &Form, what: &str, message: &str) -> http::Response<Body> {
    let content = fill(
        REFUSED,
        &[
            ("summary", &summary(form)),
            ("error_code", &html_escape(what)),
            ("message", &html_escape(message)),
            (
                "return",
                &link(
                    form.get("failure_url").or(form.get("cancel_url")),
                    "mock-return",
                    "ショップに戻る",
                ),
            ),
        ],
    );
    html(
        StatusCode::OK,
        page("決済できませんでした（スタンドイン）", &content),
    )
}

fn landing_page(form: &Form) -> String {
    let hidden: String = CARRIED
        .iter()
        .filter_map(|name| {
            form.get(name).map(|value| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                    html_escape(value)
                )
            })
        })
        .collect();
    let methods: String = SETTLE_METHODS
        .iter()
        .map(|(code, label)| {
            format!(
                "<option value=\"{code}\">{} ({code})</option>\n",
                html_escape(label)
            )
        })
        .collect();
    let content = fill(
        LANDING,
        &[
            ("summary", &summary(form)),
            ("hidden", &hidden),
            ("methods", &methods),
            (
                "cancel",
                &link(
                    form.get("cancel_url"),
                    "mock-cancel",
                    "キャンセルしてショップに戻る",
                ),
            ),
        ],
    );
    page("クロネコwebコレクト お支払い（スタンドイン）", &content)
}

/// The order as the buyer sees it: merchant, order number, goods name and amount.
fn summary(form: &Form) -> String {
    let row = |label: &str, value: Option<&str>| {
        format!(
            "<dt>{label}</dt><dd>{}</dd>\n",
            html_escape(value.unwrap_or("（未指定）"))
        )
    };
    let price = form.get("settle_price").map(|p| format!("{p}円"));
    [
        "<dl>\n".to_string(),
        row("加盟店コード", form.get("trader_code")),
        row("受付番号", form.get("order_no")),
        row("商品名", form.get("goods_name")),
        row("決済金額", price.as_deref()),
        "</dl>\n".to_string(),
    ]
    .concat()
}

/// A paragraph linking to a merchant URL, or nothing when the URL is missing or unsafe.
fn link(url: Option<&str>, id: &str, text: &str) -> String {
    safe_url(url).map_or_else(String::new, |url| {
        format!(
            "<p><a href=\"{}\" id=\"{id}\">{text}</a></p>\n",
            html_escape(url)
        )
    })
}

/// A merchant URL that is safe to put in a link: http(s) only (no `javascript:`).
fn safe_url(url: Option<&str>) -> Option<&str> {
    url.filter(|u| {
        let lower = u.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pages_escape_merchant_input_and_refuse_script_urls() {
        let form = Form::parse(
            b"order_no=%3Cscript%3E&success_url=javascript%3Aalert(1)&cancel_url=https%3A%2F%2Fshop.example%2F%3Fa%3D1%26b%3D%22",
            None,
        );
        let landing = landing_page(&form);
        assert!(!landing.contains("<script>"), "{landing}");
        assert!(!landing.contains("{{"), "{landing}");
        assert!(landing.contains("&lt;script&gt;"), "{landing}");
        assert!(
            landing.contains("href=\"https://shop.example/?a=1&amp;b=&quot;\""),
            "{landing}"
        );
        assert!(!link(form.get("success_url"), "x", "y").contains("javascript:"));
    }
}
