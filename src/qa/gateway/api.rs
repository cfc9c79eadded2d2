//! The XML API and XP functions (kuroneko-webcollect.md §3, §5): the gateway's checks, then
//! answers drawn from what the stand-in remembers: orders (A01/A08/F01 authorise, A06 cancels,
//! A07 changes the amount, E01–E03/F02–F03 ship, E04/F04 report), stored cards (A03–A05) and
//! tokens (single use).
//!
//! Error codes have the gateway's 10-character shape: `function_div`, then `1` and the
//! field for a missing or malformed field, `2` for a refusal. The field numbers follow A08's
//! codes in public client code tables (A081010201 no trader_code, A081010401 no order_no,
//! A081010501/…504 settle_price, A081011201/…202 token), as do A082000003 (order number
//! already used) and A082000004 (token unusable); the `2009xxx` codes are the stand-in's own.

use chrono::{DateTime, Utc};

use super::Gateway;
use super::cards::{Member, NoSuchCard, mask};
use super::form::Form;
use super::orders::{Order, WrongState, card_brand, status};
use super::store::{Keyed as _, State};
use super::testcards;
use super::tokens::{self, CardHint, TokenError};
use crate::response::page::html_escape;

/// What a function does to the stand-in's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A01, F01: authorise with the card in the request.
    Authorise,
    /// A08: authorise with a token.
    AuthoriseToken,
    /// A02, A09: 3-D Secure result of an authorised order.
    Confirm3d,
    /// A11.
    Reauthorise,
    /// A06.
    Cancel,
    /// A07.
    ChangePrice,
    /// E01, F02.
    Ship,
    /// E02, F03.
    Unship,
    /// E03.
    ChangeDate,
    /// E04, F04.
    TradeInfo,
    /// A03.
    CardsGet,
    /// A04.
    CardUpdate,
    /// A05.
    CardDelete,
    /// H01.
    TraderIp,
    /// Everything else: a plain success.
    Plain,
}

/// A gateway function: its path name, its `function_div` and what it does.
#[derive(Debug)]
pub(crate) struct Function {
    pub(crate) name: &'static str,
    div: &'static str,
    op: Op,
}

const fn function(name: &'static str, div: &'static str, op: Op) -> Function {
    Function { name, div, op }
}

/// The API family (`/api/<name>`, `/test_gateway/<name>.api`).
pub(crate) const API: &[Function] = &[
    function("credit", "A01", Op::Authorise),
    function("credit3D", "A02", Op::Confirm3d),
    function("creditInfoGet", "A03", Op::CardsGet),
    function("creditInfoUpdate", "A04", Op::CardUpdate),
    function("creditInfoDelete", "A05", Op::CardDelete),
    function("creditCancel", "A06", Op::Cancel),
    function("creditChangePrice", "A07", Op::ChangePrice),
    function("creditToken", "A08", Op::AuthoriseToken),
    function("creditToken3D", "A09", Op::Confirm3d),
    function("reAuth", "A11", Op::Reauthorise),
    function("cvs1", "B01", Op::Plain),
    function("cvs2", "B02", Op::Plain),
    function("cvs3", "B03", Op::Plain),
    function("e_money1", "C01", Op::Plain),
    function("e_money2", "C02", Op::Plain),
    function("e_money3", "C03", Op::Plain),
    function("e_money4", "C04", Op::Plain),
    function("e_money5", "C05", Op::Plain),
    function("e_money6", "C06", Op::Plain),
    function("bank1", "D01", Op::Plain),
    function("shipmentEntry", "E01", Op::Ship),
    function("shipmentCancel", "E02", Op::Unship),
    function("changeDate", "E03", Op::ChangeDate),
    function("tradeInfo", "E04", Op::TradeInfo),
    function("regular", "G01", Op::Plain),
    function("regular3D", "G02", Op::Plain),
    function("regularInfo", "G03", Op::Plain),
    function("regularUpdate", "G04", Op::Plain),
    function("regularDelete", "G05", Op::Plain),
    function("traderIp", "H01", Op::TraderIp),
    function("paypaySettle", "L01", Op::Plain),
    function("paypaySettleCancel", "L02", Op::Plain),
    function("paypayChangePrice", "L03", Op::Plain),
];

/// The XP (切売) family (`/api/xp/<name>`, `/test_gateway/xp/<name>.api`).
pub(crate) const XP: &[Function] = &[
    function("authXp", "F01", Op::Authorise),
    function("shipmentEntryXp", "F02", Op::Ship),
    function("shipmentCancelXp", "F03", Op::Unship),
    function("tradeInfoXp", "F04", Op::TradeInfo),
];

/// The function named `name` in `family`.
pub(crate) fn find(family: &'static [Function], name: &str) -> Option<&'static Function> {
    family.iter().find(|f| f.name == name)
}

/// Tails of the error codes (after the `function_div`).
mod tail {
    pub(super) const NO_TRADER_CODE: &str = "1010201";
    pub(super) const NO_ORDER_NO: &str = "1010401";
    pub(super) const NO_PRICE: &str = "1010501";
    pub(super) const BAD_PRICE: &str = "1010504";
    pub(super) const NO_TOKEN: &str = "1011201";
    pub(super) const BAD_TOKEN_LENGTH: &str = "1011202";
    /// The stand-in's choice: no member_id (A03–A05).
    pub(super) const NO_MEMBER_ID: &str = "1011601";
    /// The stand-in's choice: no card_key (A04, A05).
    pub(super) const NO_CARD_KEY: &str = "1011701";
    pub(super) const DUPLICATE_ORDER: &str = "2000003";
    pub(super) const TOKEN_UNUSABLE: &str = "2000004";
    /// The stand-in's choice: no such order (該当取引なし).
    pub(super) const UNKNOWN_ORDER: &str = "2009001";
    /// The stand-in's choice: the order's state forbids it (e.g. cancelling twice).
    pub(super) const WRONG_STATE: &str = "2009002";
    /// The stand-in's choice: no such stored card.
    pub(super) const NO_SUCH_CARD: &str = "2009003";
}

/// Z019999999, the gateway's system error: the stand-in could not mint a token.
pub(crate) const SYSTEM_ERROR: &str = "Z019999999";

/// `returnCode` 1 with this `errorCode`, or the function-specific elements of a success.
type ApiReply = Result<String, String>;

impl Function {
    fn code(&self, tail: &str) -> String {
        format!("{}{tail}", self.div)
    }

    fn required<'a>(&self, form: &'a Form, name: &str, tail: &str) -> Result<&'a str, String> {
        form.get(name).ok_or_else(|| self.code(tail))
    }

    /// An amount in yen: digits only, more than zero.
    fn price(&self, value: Option<&str>) -> Result<u64, String> {
        let value = value.ok_or_else(|| self.code(tail::NO_PRICE))?;
        value
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .filter(|p| *p > 0)
            .ok_or_else(|| self.code(tail::BAD_PRICE))
    }

    /// The order key: `trader_code` and `order_no`, both required.
    fn order_key(&self, form: &Form) -> Result<(String, String), String> {
        let trader = self.required(form, "trader_code", tail::NO_TRADER_CODE)?;
        let order_no = self.required(form, "order_no", tail::NO_ORDER_NO)?;
        Ok((trader.to_string(), order_no.to_string()))
    }

    fn member_key(&self, form: &Form) -> Result<(String, String), String> {
        let trader = self.required(form, "trader_code", tail::NO_TRADER_CODE)?;
        let member = self.required(form, "member_id", tail::NO_MEMBER_ID)?;
        Ok((trader.to_string(), member.to_string()))
    }
}

/// The answer to a POST of `form` to `f` (its `function_div` already checked).
pub(crate) async fn answer(gw: &Gateway, f: &'static Function, form: &Form) -> String {
    let now = gw.clock.now();
    let date = super::jst(now);
    // The test gateway's way to rehearse a refusal: the code asked for, nothing changed.
    if let Some(code) = testcards::forced_by_reserve(form.get("reserve_1")) {
        return xml("1", code, &date, "");
    }
    let outcome = match f.op {
        Op::Authorise | Op::AuthoriseToken => authorise(gw, f, form, now, &date).await,
        Op::TradeInfo => trade_info(gw, f, form),
        Op::CardsGet => cards(gw, f, form),
        Op::CardUpdate | Op::CardDelete => change_card(gw, f, form).await,
        Op::TraderIp => Ok(element("ipAddress", TRADER_IP)),
        Op::Plain => Ok(String::new()),
        Op::Confirm3d
        | Op::Reauthorise
        | Op::Cancel
        | Op::ChangePrice
        | Op::Ship
        | Op::Unship
        | Op::ChangeDate => change_order(gw, f, form, &date).await,
    };
    match outcome {
        Ok(extra) => xml("0", "", &date, &extra),
        Err(code) => xml("1", &code, &date, ""),
    }
}

/// H01's answer: TEST-NET-3 (RFC 5737), clearly not a real gateway address.
const TRADER_IP: &str = "203.0.113.10";

/// 与信承認番号: made up, but stable for a given instant.
fn approval(date: &str) -> String {
    format!("0{date}")
}

async fn authorise(
    gw: &Gateway,
    f: &'static Function,
    form: &Form,
    now: DateTime<Utc>,
    date: &str,
) -> ApiReply {
    let (trader_code, order_no) = f.order_key(form)?;
    let settle_price = f.price(form.get("settle_price"))?;
    let token = match f.op {
        Op::AuthoriseToken => Some(tokens::check_shape(form.get("token")).map_err(|e| {
            f.code(match e {
                TokenError::Missing => tail::NO_TOKEN,
                TokenError::Length => tail::BAD_TOKEN_LENGTH,
                TokenError::Refused => tail::TOKEN_UNUSABLE,
            })
        })?),
        _ => None,
    };
    // A01/F01 carry the card itself: only its brand and masked number are kept.
    let card_no = form.get("card_no");
    let in_request = CardHint {
        masking_card_no: card_no.and_then(mask),
        card_exp: form.get("card_exp").map(str::to_string),
        card_owner: form.get("card_owner").map(str::to_string),
        card_key: form.get("card_key").map(str::to_string),
        card_code_api: card_no.map(|n| card_brand(Some(n)).to_string()),
        member_id: None,
        test_card: card_no
            .and_then(testcards::by_number)
            .map(|card| card.tail.to_string()),
    };
    let option_service = OptionService::of(form);
    let mut order = Order {
        trader_code,
        order_no,
        device_div: form.get("device_div").unwrap_or("2").to_string(),
        settle_date: date.to_string(),
        settle_price,
        settle_method: String::new(),
        status: status::AUTHORISED,
        member_id: None,
        pay_way: form.get("pay_way").unwrap_or("1").to_string(),
        approval: approval(date),
        slip_no: None,
        scheduled_shipping_date: form.get("scheduled_shipping_date").map(str::to_string),
        cancel_date: None,
    };
    let strict = gw.strict_tokens;
    gw.store
        .write(|s| {
            // Every refusal comes before the first change: an `Err` leaves the state as it
            // was (a refused order leaves its token usable).
            if s.orders.contains(&order.key()) {
                return Err(f.code(tail::DUPLICATE_ORDER));
            }
            let card = match token {
                Some(token) => tokens::peek(&s.tokens, token),
                None => in_request,
            };
            // A test card number is declined as asked, before anything is stored or spent.
            if let Some(tail) = &card.test_card {
                return Err(f.code(tail));
            }
            // The member: the request's, else the one the token was minted for.
            let member_id = form
                .get("member_id")
                .map(str::to_string)
                .or_else(|| card.member_id.clone());
            let stored = match (&card.card_key, &member_id) {
                (Some(key), Some(member_id)) => {
                    let key_of = (order.trader_code.clone(), member_id.clone());
                    let stored = s
                        .members
                        .get(&key_of)
                        .ok_or(NoSuchCard)
                        .and_then(|m| m.card(key))
                        .map_err(|NoSuchCard| f.code(tail::NO_SUCH_CARD))?;
                    Some(stored.card_code_api.clone())
                }
                (Some(_), None) => return Err(f.code(tail::NO_MEMBER_ID)),
                (None, _) => None,
            };
            if let Some(token) = token {
                tokens::spend(&mut s.tokens, token, strict, now)
                    .map_err(|_| f.code(tail::TOKEN_UNUSABLE))?;
            }
            order.settle_method = stored
                .or_else(|| card.card_code_api.clone())
                .unwrap_or_else(|| card_brand(None).to_string());
            if let Some(member_id) = &member_id {
                let keeps = option_service.stores(card.member_id.is_some());
                if card.card_key.is_some() || keeps {
                    member(s, &order.trader_code, member_id).authorised(&card, date);
                }
            }
            order.member_id = member_id;
            let answer = element("crdCResCd", &order.approval);
            s.orders.insert(order);
            Ok(answer)
        })
        .await
}

/// How an authorisation asks for the option service (stored cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionService {
    /// `option_service_div` (or the older spelling `opt_serv_div`) as sent.
    Div(bool),
    /// No division sent, but `authentication_key` with the member: the option service's own
    /// member fields (CS-Cart's register_card_info sends these on an A08).
    MemberFields,
    /// Neither.
    Absent,
}

impl OptionService {
    fn of(form: &Form) -> Self {
        match form
            .get("option_service_div")
            .or_else(|| form.get("opt_serv_div"))
        {
            Some(div) => Self::Div(div == "01"),
            None if form.get("authentication_key").is_some() => Self::MemberFields,
            None => Self::Absent,
        }
    }

    /// Whether the card is stored for the member: asked for by the division, or (with none
    /// sent) by the member fields or a token minted for a member (`optServDiv` 01 and
    /// `memberId` in `createTokenInfo`). A division `00` sent explicitly never stores.
    fn stores(self, token_has_member: bool) -> bool {
        match self {
            Self::Div(stores) => stores,
            Self::MemberFields => true,
            Self::Absent => token_has_member,
        }
    }
}

/// The member's stored cards, created empty on first use.
fn member<'s>(s: &'s mut State, trader_code: &str, member_id: &str) -> &'s mut Member {
    let key = (trader_code.to_string(), member_id.to_string());
    s.members
        .get_or_insert_with(key, || Member::new(trader_code, member_id))
}

/// E04/F04: one `resultData` per requested `order_no` (repeats answered once); any order the
/// stand-in never saw makes the whole answer an error, as no row can be made up for it.
fn trade_info(gw: &Gateway, f: &Function, form: &Form) -> ApiReply {
    let trader = f.required(form, "trader_code", tail::NO_TRADER_CODE)?;
    let mut order_nos: Vec<&str> = Vec::new();
    for order_no in form.all("order_no") {
        if !order_nos.contains(&order_no) {
            order_nos.push(order_no);
        }
    }
    if order_nos.is_empty() {
        return Err(f.code(tail::NO_ORDER_NO));
    }
    gw.store.read(|s| {
        let rows = order_nos
            .iter()
            .map(|order_no| {
                s.orders
                    .get(&(trader.to_string(), (*order_no).to_string()))
                    .map(result_data)
                    .ok_or_else(|| f.code(tail::UNKNOWN_ORDER))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(element("resultCount", &rows.len().to_string()) + &rows.concat())
    })
}

/// One `resultData` (kuroneko-webcollect.md §5), optional elements only when known.
fn result_data(o: &Order) -> String {
    let mut row = String::from("<resultData>\n");
    let price = o.settle_price.to_string();
    let status = o.status.to_string();
    for (name, value) in [
        ("orderNo", Some(o.order_no.as_str())),
        ("deviceDiv", Some(o.device_div.as_str())),
        ("settleDate", Some(o.settle_date.as_str())),
        ("settlePrice", Some(price.as_str())),
        // Card payments only: 0 is the card settleMethodDiv.
        ("settleMethodDiv", Some("0")),
        ("settleMethod", Some(o.settle_method.as_str())),
        ("statusInfo", Some(status.as_str())),
        ("memberId", o.member_id.as_deref()),
        ("payWay", Some(o.pay_way.as_str())),
        ("crdCResCd", Some(o.approval.as_str())),
        ("slipNo", o.slip_no.as_deref()),
        (
            "scheduledShippingDate",
            o.scheduled_shipping_date.as_deref(),
        ),
        ("cancelDate", o.cancel_date.as_deref()),
    ] {
        if let Some(value) = value {
            row.push_str(&element(name, value));
        }
    }
    row.push_str("</resultData>\n");
    row
}

/// A06, A07, A02/A09, A11, E01–E03, F02–F03 on a known order.
async fn change_order(gw: &Gateway, f: &'static Function, form: &Form, date: &str) -> ApiReply {
    let key = f.order_key(form)?;
    let new_price = match f.op {
        // The amount after the change; `settle_price` also accepted.
        Op::ChangePrice => Some(f.price(form.get("new_price").or(form.get("settle_price")))?),
        _ => None,
    };
    gw.store
        .write(|s| {
            let order = s
                .orders
                .get_mut(&key)
                .ok_or_else(|| f.code(tail::UNKNOWN_ORDER))?;
            let changed = match (f.op, new_price) {
                (Op::Cancel, _) => order.cancel(date),
                (Op::ChangePrice, Some(price)) => order.change_price(price),
                (Op::Ship, _) => order.ship(form.get("slip_no")),
                (Op::Unship, _) => order.unship(),
                (Op::ChangeDate, _) => order.change_date(form.get("scheduled_shipping_date")),
                (Op::Reauthorise, _) => order.reauthorise(date, &approval(date)),
                _ => Ok(()),
            };
            changed.map_err(|WrongState| f.code(tail::WRONG_STATE))?;
            Ok(match f.op {
                // `.invalid` (RFC 6761): a slip URL that can never be mistaken for a real one.
                Op::Ship => element(
                    "slipUrlPc",
                    &format!(
                        "https://stand-in-gateway.invalid/slip?order_no={}",
                        crate::qa::notify::form_encode(&order.order_no)
                    ),
                ),
                Op::Confirm3d | Op::Reauthorise => element("crdCResCd", &order.approval),
                // The order's new state, where WooCommerce admins read it after a cancel
                // (`resultData.statusInfo`). The gateway's A06 answer is not public; E04's
                // `resultData` (kuroneko-webcollect.md §5) is the shape it is read from.
                Op::Cancel => format!(
                    "<resultData>\n{}</resultData>\n",
                    element("statusInfo", &order.status.to_string())
                ),
                _ => String::new(),
            })
        })
        .await
}

/// A03: `cardUnit`, then one `cardData` per stored card (none for an unknown member).
fn cards(gw: &Gateway, f: &Function, form: &Form) -> ApiReply {
    let key = f.member_key(form)?;
    gw.store.read(|s| {
        let cards = s.members.get(&key).map_or(&[][..], |m| m.cards.as_slice());
        let mut out = element("cardUnit", &cards.len().to_string());
        for card in cards {
            out.push_str("<cardData>\n");
            out.push_str(&element("cardCodeApi", &card.card_code_api));
            out.push_str(&element("cardKey", &card.card_key.to_string()));
            out.push_str(&element("maskingCardNo", &card.masking_card_no));
            out.push_str(&element("cardExp", &card.card_exp));
            out.push_str(&element("cardOwner", &card.card_owner));
            out.push_str(&element("lastCreditDate", &card.last_credit_date));
            out.push_str("</cardData>\n");
        }
        Ok(out)
    })
}

/// A04 (new `card_exp` / `card_owner`) and A05 (delete) on a stored card.
async fn change_card(gw: &Gateway, f: &'static Function, form: &Form) -> ApiReply {
    let key = f.member_key(form)?;
    let card_key = f.required(form, "card_key", tail::NO_CARD_KEY)?;
    gw.store
        .write(|s| {
            let member = s
                .members
                .get_mut(&key)
                .ok_or_else(|| f.code(tail::NO_SUCH_CARD))?;
            match f.op {
                Op::CardDelete => member.delete(card_key),
                _ => member.update(card_key, form.get("card_exp"), form.get("card_owner")),
            }
            .map_err(|NoSuchCard| f.code(tail::NO_SUCH_CARD))?;
            Ok(String::new())
        })
        .await
}

/// The gateway's XML: declaration, `return`, the three common elements, then `extra`.
pub(crate) fn xml(return_code: &str, error_code: &str, date: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>{return_code}</returnCode>\n<errorCode>{error_code}</errorCode>\n<returnDate>{date}</returnDate>\n{extra}</return>\n"
    )
}

/// `<name>value</name>` and a newline, value escaped.
pub(crate) fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>\n", html_escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_distinct_name_and_div() {
        let all: Vec<&Function> = API.iter().chain(XP).collect();
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.div.len(), 3, "{}", a.name);
            for b in &all[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.div, b.div);
            }
        }
        // Error codes are 10 characters.
        let f = find(API, "creditToken").unwrap();
        assert_eq!(f.code(tail::DUPLICATE_ORDER), "A082000003");
        assert_eq!(f.code(tail::UNKNOWN_ORDER).len(), 10);
    }

    #[test]
    fn prices_are_positive_digits() {
        let f = find(API, "creditToken").unwrap();
        assert_eq!(f.price(Some("1500")), Ok(1500));
        assert_eq!(f.price(None), Err("A081010501".to_string()));
        for bad in ["0", "-1", "1.5", "１", "99999999999999999999999"] {
            assert_eq!(f.price(Some(bad)), Err("A081010504".to_string()), "{bad}");
        }
    }
}
