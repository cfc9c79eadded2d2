//! What the journal reads from bodies: three identifiers from a form, two codes from an XML
//! answer. An allow-list, so no other field (tokens, card data, `authentication_key`,
//! `check_sum`, buyer names, phone numbers, e-mail addresses) is ever kept.

use std::borrow::Cow;

/// The form fields a record keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// `function_div` (which API function: A01, A08, E04, …).
    pub function_div: Option<String>,
    /// `trader_code`.
    pub trader_code: Option<String>,
    /// `order_no`.
    pub order_no: Option<String>,
}

/// Longest value kept; identifiers are far shorter, so anything longer is cut.
const MAX_VALUE: usize = 64;

/// Reads the kept fields from the start of an `application/x-www-form-urlencoded` body.
/// `complete` is false when the body went on past `prefix`: its last pair may be cut, so it
/// is not read. Values are UTF-8, else Shift_JIS (link-method forms).
#[must_use]
pub fn form(prefix: &[u8], complete: bool) -> Form {
    let mut out = Form::default();
    let mut pairs: Vec<&[u8]> = prefix.split(|b| *b == b'&').collect();
    if !complete {
        pairs.pop();
    }
    for pair in pairs {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let slot = match decode(key).as_ref() {
            "function_div" => &mut out.function_div,
            "trader_code" => &mut out.trader_code,
            "order_no" => &mut out.order_no,
            _ => continue,
        };
        if slot.is_none() {
            let value = clean(&decode(value));
            if !value.is_empty() {
                *slot = Some(value);
            }
        }
    }
    out
}

/// `returnCode` and `errorCode` of an XML answer's start (the gateway's `<return>`).
#[must_use]
pub fn codes(prefix: &[u8]) -> (Option<String>, Option<String>) {
    (element(prefix, "returnCode"), element(prefix, "errorCode"))
}

fn element(xml: &[u8], name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = find(xml, open.as_bytes())? + open.len();
    let len = find(&xml[start..], close.as_bytes())?;
    let value = std::str::from_utf8(&xml[start..start + len]).ok()?.trim();
    (!value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| value.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent- and `+`-decoding, then UTF-8 or else Shift_JIS.
fn decode(raw: &[u8]) -> Cow<'_, str> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(err) => {
            let (text, _, _) = encoding_rs::SHIFT_JIS.decode(err.as_bytes());
            Cow::Owned(text.into_owned())
        }
    }
}

/// No control characters (a log or terminal reading the report must not be steered), and
/// at most [`MAX_VALUE`] characters.
fn clean(value: &str) -> String {
    value
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VALUE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_identifiers() {
        let body = b"function_div=A08&trader_code=888888709&order_no=R-1&token=abc123\
            &authentication_key=secret&check_sum=cafe&buyer_name_kanji=%E5%B1%B1%E7%94%B0\
            &buyer_tel=0312345678&buyer_email=a%40example.jp&card_no=4111111111111111";
        let form = form(body, true);
        assert_eq!(
            form,
            Form {
                function_div: Some("A08".into()),
                trader_code: Some("888888709".into()),
                order_no: Some("R-1".into()),
            }
        );
    }

    #[test]
    fn reads_shift_jis_and_escapes() {
        // 「注文」 in Shift_JIS, percent-encoded, as a link-method form posts it.
        let form = form(b"order_no=%92%8D%95%B6+1&trader_code=1%2B2", true);
        assert_eq!(form.order_no.as_deref(), Some("注文 1"));
        assert_eq!(form.trader_code.as_deref(), Some("1+2"));
    }

    #[test]
    fn a_cut_last_pair_is_not_read() {
        let form = form(b"trader_code=888&order_no=R-12", false);
        assert_eq!(form.trader_code.as_deref(), Some("888"));
        assert_eq!(form.order_no, None);
    }

    #[test]
    fn control_characters_and_long_values_are_cut() {
        let long = "9".repeat(100);
        let body = format!("order_no=a%1B%5B2Jb%0D&trader_code={long}");
        let form = form(body.as_bytes(), true);
        assert_eq!(form.order_no.as_deref(), Some("a[2Jb"));
        assert_eq!(form.trader_code.map(|t| t.len()), Some(64));
    }

    #[test]
    fn reads_the_gateway_codes() {
        let xml =
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n\
            <errorCode>Z01000000</errorCode>\n<returnDate>20200420020000</returnDate>\n</return>\n";
        assert_eq!(codes(xml), (Some("1".into()), Some("Z01000000".into())));
        assert_eq!(codes(b"<html>no</html>"), (None, None));
        assert_eq!(
            codes(b"<returnCode>0</returnCode>"),
            (Some("0".into()), None)
        );
    }
}
