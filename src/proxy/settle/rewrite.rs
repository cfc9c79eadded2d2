//! The settleMethod drill: rewrite `resultData/settleMethod` in E04/F04 trade-info XML and
//! `settle_method` in payment-result notifications, leaving every other byte as it was.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;

/// Why an XML body was left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// quick-xml rejected it, or elements were left open.
    #[error("not well-formed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset of the problem.
        position: u64,
        /// What is wrong.
        message: String,
    },
}

/// Rewrites the text of every `settleMethod` element whose parent is `resultData` to `value`.
/// Returns `Ok(None)` when there is nothing to rewrite (e.g. an error answer without
/// `resultData`), so the original bytes go out untouched.
///
/// # Errors
/// The body is not well-formed XML; the caller passes it through unmodified.
pub fn rewrite_xml(body: &[u8], value: &str) -> Result<Option<Vec<u8>>, XmlError> {
    enum Edit {
        /// Replace the element's content.
        Content(Range<usize>),
        /// Replace an empty element `<settleMethod/>` whole.
        Element(Range<usize>),
    }
    // quick-xml consumes a UTF-8 byte-order mark without counting it in its positions, so
    // parse after the mark and shift the edits back by its length (found by fuzzing).
    let bom = if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    let mut reader = Reader::from_reader(&body[bom..]);
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut content_start = None;
    let mut edits = Vec::new();
    let mut saw_element = false;
    let under_result_data = |stack: &[String]| stack.last().is_some_and(|n| n == "resultData");
    loop {
        let before = bom + to_usize(reader.buffer_position());
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| XmlError::Malformed {
                position: bom as u64 + reader.error_position(),
                message: e.to_string(),
            })?;
        let after = bom + to_usize(reader.buffer_position());
        match event {
            Event::Start(e) => {
                saw_element = true;
                let name = e.name().into_inner().to_string();
                if name == "settleMethod" && under_result_data(&stack) {
                    content_start = Some(after);
                }
                stack.push(name);
            }
            Event::Empty(e) => {
                saw_element = true;
                if e.name().into_inner() == "settleMethod" && under_result_data(&stack) {
                    edits.push(Edit::Element(before..after));
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if name == "settleMethod"
                    && under_result_data(&stack)
                    && let Some(start) = content_start.take()
                {
                    edits.push(Edit::Content(start..before));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() || !saw_element {
        return Err(XmlError::Malformed {
            position: body.len() as u64,
            message: if saw_element {
                "unclosed element".into()
            } else {
                "no root element".into()
            },
        });
    }
    if edits.is_empty() {
        return Ok(None);
    }
    // Belt and braces: every edit must sit exactly between `>` and `</`, or cover one
    // `<…/>` element; anything else means the positions are off, and the body goes out
    // unmodified rather than corrupted.
    let sane = edits.iter().all(|edit| match edit {
        Edit::Content(r) => {
            r.start > 0
                && body.get(r.start - 1) == Some(&b'>')
                && body
                    .get(r.end..)
                    .is_some_and(|rest| rest.starts_with(b"</"))
        }
        Edit::Element(r) => body
            .get(r.clone())
            .is_some_and(|e| e.starts_with(b"<") && e.ends_with(b"/>")),
    });
    if !sane {
        return Err(XmlError::Malformed {
            position: 0,
            message: "element positions could not be located exactly".into(),
        });
    }
    let mut out = Vec::with_capacity(body.len() + edits.len() * value.len());
    let mut copied = 0;
    for edit in &edits {
        let (range, replacement) = match edit {
            Edit::Content(r) => (r, value.as_bytes().to_vec()),
            Edit::Element(r) => (
                r,
                format!("<settleMethod>{value}</settleMethod>").into_bytes(),
            ),
        };
        out.extend_from_slice(&body[copied..range.start]);
        out.extend_from_slice(&replacement);
        copied = range.end;
    }
    out.extend_from_slice(&body[copied..]);
    Ok(Some(out))
}

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// Rewrites the value of every `settle_method` field of a form-urlencoded body, keeping
/// every other field, their order and their encoding byte for byte. `None` when the body
/// has no such field.
#[must_use]
pub fn rewrite_form(body: &[u8], value: &str) -> Option<Vec<u8>> {
    let mut changed = false;
    let parts: Vec<Vec<u8>> = body
        .split(|&b| b == b'&')
        .map(|pair| {
            let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
            if key == b"settle_method" {
                changed = true;
                [b"settle_method=".as_slice(), value.as_bytes()].concat()
            } else {
                pair.to_vec()
            }
        })
        .collect();
    changed.then(|| parts.join(&b'&'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const E04: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<return>
  <returnCode>0</returnCode>
  <errorCode></errorCode>
  <returnDate>20200420013000</returnDate>
  <settleMethod>77</settleMethod>
  <resultCount>3</resultCount>
  <resultData>
    <orderNo>A-1</orderNo>
    <settleMethodDiv>0</settleMethodDiv>
    <settleMethod>3</settleMethod>
    <statusInfo>4</statusInfo>
  </resultData>
  <resultData><orderNo>A-2</orderNo><settleMethod> 9 </settleMethod></resultData>
  <resultData>
    <orderNo>A-3</orderNo>
    <settleMethod>23</settleMethod>
  </resultData>
</return>
"#;

    #[test]
    fn every_result_data_settle_method_becomes_the_value() {
        let out = String::from_utf8(rewrite_xml(E04.as_bytes(), "14").unwrap().unwrap()).unwrap();
        let want = E04
            .replace(
                "<settleMethod>3</settleMethod>",
                "<settleMethod>14</settleMethod>",
            )
            .replace(
                "<settleMethod> 9 </settleMethod>",
                "<settleMethod>14</settleMethod>",
            )
            .replace(
                "<settleMethod>23</settleMethod>",
                "<settleMethod>14</settleMethod>",
            );
        assert_eq!(out, want);
        // Outside resultData: untouched.
        assert!(out.contains("<settleMethod>77</settleMethod>"));
    }

    #[test]
    fn error_answers_and_empty_elements() {
        let err = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return><returnCode>1</returnCode><errorCode>E04000001</errorCode></return>";
        assert_eq!(rewrite_xml(err.as_bytes(), "14"), Ok(None));
        let empty = "<return><resultData><settleMethod/></resultData><resultData><settleMethod></settleMethod></resultData></return>";
        assert_eq!(
            String::from_utf8(rewrite_xml(empty.as_bytes(), "14").unwrap().unwrap()).unwrap(),
            "<return><resultData><settleMethod>14</settleMethod></resultData><resultData><settleMethod>14</settleMethod></resultData></return>"
        );
    }

    #[test]
    fn a_byte_order_mark_does_not_shift_the_edit() {
        let body = "\u{feff}<?xml version=\"1.0\"?><return><resultData><settleMethod>3</settleMethod></resultData></return>";
        let out = String::from_utf8(rewrite_xml(body.as_bytes(), "14").unwrap().unwrap()).unwrap();
        assert_eq!(out, body.replace(">3<", ">14<"));
    }

    #[test]
    fn fuzz_regressions_rewrite_idempotently() {
        for name in ["regression-bom", "regression-double-bom"] {
            let path = format!("{}/fuzz/seeds/settle/{name}", env!("CARGO_MANIFEST_DIR"));
            let body = std::fs::read(&path).unwrap();
            if let Ok(Some(out)) = rewrite_xml(&body, "14") {
                assert_eq!(rewrite_xml(&out, "14"), Ok(Some(out.clone())), "{name}");
            }
        }
        let double = b"\xEF\xBB\xBF\xEF\xBB\xBF<return><resultData><settleMethod>3</settleMethod></resultData></return>";
        assert!(rewrite_xml(double, "14").is_err());
    }

    #[test]
    fn malformed_xml_is_refused() {
        for bad in [
            "<return><resultData></return>",
            "<return><resultData>",
            "not xml at all",
            "",
        ] {
            assert!(rewrite_xml(bad.as_bytes(), "14").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn form_fields_keep_order_and_encoding() {
        let body = b"trader_code=123456789&order_no=%E6%B3%A8+1&settle_method=3&settle_price=1000";
        assert_eq!(
            rewrite_form(body, "14").unwrap(),
            b"trader_code=123456789&order_no=%E6%B3%A8+1&settle_method=14&settle_price=1000"
        );
        assert_eq!(rewrite_form(b"trader_code=1&settle_methodx=3", "14"), None);
    }
}
