//! What the journal reads from bodies: three identifiers from a form, two codes from an XML
//! answer. An allow-list, so no other field (tokens, card data, `authentication_key`,
//! `check_sum`, buyer names, phone numbers, e-mail addresses) is ever kept.

use std::borrow::Cow;
use std::sync::OnceLock;

use memchr::memmem::Finder;

/// A short text kept inline (no allocation), cut at `N` bytes on a character boundary: what
/// a capture carries from the request path to the journal's writer thread, so nothing the
/// worker allocated is freed on another thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ident<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Ident<N> {
    /// `text`, cut at `N` bytes (and at most 255) on a character boundary.
    #[must_use]
    pub(crate) fn new(text: &str) -> Self {
        let mut end = text.len().min(N).min(usize::from(u8::MAX));
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; N];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Self {
            bytes,
            len: u8::try_from(end).unwrap_or(u8::MAX),
        }
    }

    /// `ascii`, which the caller found to be ASCII (any cut is on a character boundary),
    /// cut at `N` bytes (and at most 255).
    fn from_ascii(ascii: &[u8]) -> Self {
        debug_assert!(ascii.is_ascii());
        let end = ascii.len().min(N).min(usize::from(u8::MAX));
        let mut bytes = [0; N];
        bytes[..end].copy_from_slice(&ascii[..end]);
        Self {
            bytes,
            len: u8::try_from(end).unwrap_or(u8::MAX),
        }
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Debug for Ident<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// Longest value kept, in bytes; identifiers are far shorter, so anything longer is cut.
pub const MAX_VALUE: usize = 64;

/// A kept value.
pub(crate) type Value = Ident<MAX_VALUE>;

/// The form fields a record keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormIds {
    /// `function_div` (which API function: A01, A08, E04, …).
    pub function_div: Option<Value>,
    /// `trader_code`.
    pub trader_code: Option<Value>,
    /// `order_no`.
    pub order_no: Option<Value>,
}

/// The fields a form may carry that a record keeps, and nothing else.
const KEPT: [&[u8]; 3] = [b"function_div", b"trader_code", b"order_no"];

/// Reads the kept fields from the start of an `application/x-www-form-urlencoded` body.
/// `complete` is false when the body went on past `prefix`: its last pair may be cut, so it
/// is not read. Values are UTF-8, else Shift_JIS (link-method forms). Only the three kept
/// values are ever decoded.
///
/// This runs on the request path for every journalled form, so it looks for the three
/// `name=` texts (SIMD substring search) instead of walking every pair; a form whose names
/// are escaped (`order%5Fno=`) takes the pair-by-pair walk.
#[must_use]
pub fn form(prefix: &[u8], complete: bool) -> FormIds {
    // The pairs that may be read: all, or all but a cut last one.
    let readable = if complete {
        prefix
    } else {
        memchr::memrchr(b'&', prefix).map_or(&[][..], |i| &prefix[..i])
    };
    let finders = kept_finders();
    let mut values = [None; 3];
    for (slot, finder) in values.iter_mut().zip(finders) {
        *slot = find_value(readable, finder);
    }
    if values.iter().any(Option::is_none) && memchr::memchr(b'%', readable).is_some() {
        walk(readable, &mut values);
    }
    let [function_div, trader_code, order_no] = values.map(|raw| raw.and_then(value));
    FormIds {
        function_div,
        trader_code,
        order_no,
    }
}

/// Searchers for `name=` of each kept field, built once (building one costs more than a
/// search of a small form).
fn kept_finders() -> &'static [Finder<'static>; 3] {
    static FINDERS: OnceLock<[Finder<'static>; 3]> = OnceLock::new();
    FINDERS.get_or_init(|| {
        [
            Finder::new(b"function_div="),
            Finder::new(b"trader_code="),
            Finder::new(b"order_no="),
        ]
    })
}

/// The raw value of the first pair `finder` finds (a name at the body's start or after `&`).
fn find_value<'a>(form: &'a [u8], finder: &Finder<'_>) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(at) = finder.find(&form[from..]) {
        let start = from + at;
        let end = start + finder.needle().len();
        if start == 0 || form[start - 1] == b'&' {
            let value = &form[end..];
            return Some(&value[..memchr::memchr(b'&', value).unwrap_or(value.len())]);
        }
        from = end;
    }
    None
}

/// Pair by pair, decoding names: fills the slots `find_value` left empty.
fn walk<'a>(form: &'a [u8], values: &mut [Option<&'a [u8]>; 3]) {
    for pair in form.split(|b| *b == b'&') {
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key = decode(key);
        if let Some(i) = KEPT.iter().position(|k| *k == key.as_bytes())
            && values[i].is_none()
        {
            values[i] = Some(value);
        }
    }
}

/// A raw value decoded and cleaned; none when empty.
fn value(raw: &[u8]) -> Option<Value> {
    // The usual identifier (`A08`, `888888709`, an order number): printable ASCII with
    // nothing escaped, which decoding, trimming and cleaning would leave as it is. Kept
    // without them: they cost a journalled form about 800 instructions (callgrind).
    if raw
        .iter()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b'+'))
    {
        return (!raw.is_empty()).then(|| Value::from_ascii(raw));
    }
    decoded_value(raw)
}

/// A raw value percent-decoded, trimmed and cleaned; none when empty.
fn decoded_value(raw: &[u8]) -> Option<Value> {
    let decoded = decode(raw);
    let value = clean(&decoded);
    (!value.is_empty()).then(|| Value::new(&value))
}

/// A gateway code (`returnCode`, `errorCode`).
pub(crate) type Code = Ident<32>;

/// `returnCode` and `errorCode` of an XML answer's start (the gateway's `<return>`).
#[must_use]
pub fn codes(prefix: &[u8]) -> (Option<Code>, Option<Code>) {
    static FINDERS: OnceLock<[Finder<'static>; 2]> = OnceLock::new();
    let [return_code, error_code] =
        FINDERS.get_or_init(|| [Finder::new(b"<returnCode>"), Finder::new(b"<errorCode>")]);
    (element(prefix, return_code), element(prefix, error_code))
}

/// The text of the element `open` starts: up to the next `<` (the gateway's codes are flat
/// text).
fn element(xml: &[u8], open: &Finder<'_>) -> Option<Code> {
    let start = open.find(xml)? + open.needle().len();
    let len = memchr::memchr(b'<', &xml[start..])?;
    let value = std::str::from_utf8(&xml[start..start + len]).ok()?.trim();
    (!value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| Code::new(value))
}

/// Percent- and `+`-decoding, then UTF-8 or else Shift_JIS. Borrows when there is nothing
/// to decode.
fn decode(raw: &[u8]) -> Cow<'_, str> {
    if !raw.iter().any(|b| matches!(b, b'%' | b'+'))
        && let Ok(text) = std::str::from_utf8(raw)
    {
        return Cow::Borrowed(text);
    }
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

/// No control characters (a log or terminal reading the report must not be steered).
fn clean(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        Cow::Owned(value.chars().filter(|c| !c.is_control()).collect())
    } else {
        Cow::Borrowed(value)
    }
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
            FormIds {
                function_div: Some(Value::new("A08")),
                trader_code: Some(Value::new("888888709")),
                order_no: Some(Value::new("R-1")),
            }
        );
    }

    #[test]
    fn reads_shift_jis_and_escapes() {
        // 「注文」 in Shift_JIS, percent-encoded, as a link-method form posts it.
        let form = form(b"order_no=%92%8D%95%B6+1&trader_code=1%2B2", true);
        assert_eq!(
            form.order_no.map(|v| v.as_str().to_string()).as_deref(),
            Some("注文 1")
        );
        assert_eq!(
            form.trader_code.map(|v| v.as_str().to_string()).as_deref(),
            Some("1+2")
        );
    }

    #[test]
    fn a_cut_last_pair_is_not_read() {
        let form = form(b"trader_code=888&order_no=R-12", false);
        assert_eq!(form.trader_code, Some(Value::new("888")));
        assert_eq!(form.order_no, None);
    }

    #[test]
    fn control_characters_and_long_values_are_cut() {
        let long = "9".repeat(100);
        let body = format!("order_no=a%1B%5B2Jb%0D&trader_code={long}");
        let form = form(body.as_bytes(), true);
        assert_eq!(form.order_no, Some(Value::new("a[2Jb")));
        assert_eq!(form.trader_code.map(|t| t.as_str().len()), Some(64));
        // Cut on a character boundary: 22 three-byte characters are 66 bytes.
        let form = super::form("order_no=%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8%E6%B3%A8".as_bytes(), true);
        assert_eq!(form.order_no.map(|v| v.as_str().chars().count()), Some(21));
    }

    #[test]
    fn plain_values_are_kept_as_decoding_would_make_them() {
        let long = "9".repeat(100);
        for raw in [
            "A08",
            "888888709",
            "R-1",
            "a.b_c~!*'()/:;=?@",
            &long,
            "\u{7e}",
        ] {
            assert_eq!(
                value(raw.as_bytes()),
                decoded_value(raw.as_bytes()),
                "{raw:?}"
            );
        }
        // Anything else is decoded: spaces, escapes, controls, bytes past ASCII.
        assert_eq!(value(b" R-1 "), Some(Value::new("R-1")));
        assert_eq!(value(b"R%2D1+2"), Some(Value::new("R-1 2")));
        assert_eq!(value(b"R\x7f1"), Some(Value::new("R1")));
        assert_eq!(value("注文".as_bytes()), Some(Value::new("注文")));
        assert_eq!(value(b""), None);
    }

    #[test]
    fn reads_the_gateway_codes() {
        let xml =
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n\
            <errorCode>Z01000000</errorCode>\n<returnDate>20200420020000</returnDate>\n</return>\n";
        assert_eq!(
            codes(xml),
            (Some(Code::new("1")), Some(Code::new("Z01000000")))
        );
        assert_eq!(codes(b"<html>no</html>"), (None, None));
        assert_eq!(
            codes(b"<returnCode>0</returnCode>"),
            (Some(Code::new("0")), None)
        );
        // An escaped key is still recognised.
        assert_eq!(
            form(b"order%5Fno=E-1", true).order_no,
            Some(Value::new("E-1"))
        );
    }
}
