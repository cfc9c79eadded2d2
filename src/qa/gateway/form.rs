//! Request forms (`application/x-www-form-urlencoded`) decoded as the gateway reads them: API
//! calls in UTF-8, link-method forms in Shift_JIS (merchants' checkout pages carry
//! `accept-charset="Shift_JIS"`).

use encoding_rs::{Encoding, SHIFT_JIS, UTF_8};
use percent_encoding::percent_decode;

/// A decoded form body or query string: every field, in order, repeats included.
#[derive(Debug, Default, Clone)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes `raw`. The charset is the `charset` parameter of `content_type` when there is
    /// one; browsers send none, so otherwise a form whose bytes are all UTF-8 is UTF-8 and any
    /// other is Shift_JIS, the link method's charset (ASCII reads the same in both).
    pub(crate) fn parse(raw: &[u8], content_type: Option<&str>) -> Self {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = raw
            .split(|b| *b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.iter().position(|b| *b == b'=') {
                Some(i) => (unescape(&pair[..i]), unescape(&pair[i + 1..])),
                None => (unescape(pair), Vec::new()),
            })
            .collect();
        let encoding = content_type.and_then(charset).unwrap_or_else(|| {
            let utf8 = pairs
                .iter()
                .all(|(k, v)| std::str::from_utf8(k).is_ok() && std::str::from_utf8(v).is_ok());
            if utf8 { UTF_8 } else { SHIFT_JIS }
        });
        let text = |bytes: &[u8]| encoding.decode_without_bom_handling(bytes).0.into_owned();
        Self(pairs.iter().map(|(k, v)| (text(k), text(v))).collect())
    }

    /// The first value of `name`, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// `+` is a space, then percent-decoding; a `%` not followed by two hex digits stays as is.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced).collect()
}

/// The encoding named by a `Content-Type`'s `charset` parameter, if any and known.
fn charset(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        // Only ASCII-compatible encodings can carry a percent-encoded form.
        Encoding::for_label(value.trim().trim_matches('"').as_bytes())
            .map(Encoding::output_encoding)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_percent_and_plus() {
        let form = Form::parse(b"a=1+2&b=%E3%81%82&c=&d&e=%zz%4&a=3", None);
        assert_eq!(form.get("a"), Some("1 2"));
        assert_eq!(form.all("a").collect::<Vec<_>>(), ["1 2", "3"]);
        assert_eq!(form.get("b"), Some("あ"));
        assert_eq!(form.get("c"), None);
        assert_eq!(form.get("d"), None);
        assert_eq!(form.get("e"), Some("%zz%4"));
    }

    #[test]
    fn shift_jis_forms_are_decoded() {
        // 「お茶」 in Shift_JIS, as a browser posts it from an accept-charset="Shift_JIS" form.
        let sjis = b"goods_name=%82%A8%92%83&settle_price=1500";
        let form = Form::parse(sjis, Some("application/x-www-form-urlencoded"));
        assert_eq!(form.get("goods_name"), Some("お茶"));
        assert_eq!(form.get("settle_price"), Some("1500"));
        // The same words in UTF-8 stay UTF-8.
        let form = Form::parse(b"goods_name=%E3%81%8A%E8%8C%B6", None);
        assert_eq!(form.get("goods_name"), Some("お茶"));
        // A declared charset wins over the guess.
        let form = Form::parse(
            b"goods_name=%82%A8%92%83",
            Some("application/x-www-form-urlencoded; charset=\"Shift_JIS\""),
        );
        assert_eq!(form.get("goods_name"), Some("お茶"));
        let form = Form::parse(
            b"goods_name=%E3%81%8A",
            Some("application/x-www-form-urlencoded; charset=windows-31j"),
        );
        assert_ne!(form.get("goods_name"), Some("お"));
    }
}
