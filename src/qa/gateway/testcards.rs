//! Declines on request, as the real test gateway gives them: `reserve_1` holding an error code
//! (「予備1（加盟店テスト環境返却用エラーコード）」), and a table of test card numbers that are
//! always refused with a given reason, like the test cards payment gateways publish.
//!
//! The numbers are the well-known test numbers of other gateways (Luhn-valid VISA numbers
//! that no issuer hands out), so a card form's own checks accept them. A token minted for one
//! is told apart by the first six digits and the last four, which the stand-in's libraries
//! send instead of the number.

/// A test card number and what the gateway answers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCard {
    /// The card number, digits only.
    number: &'static str,
    /// The error code's tail, after the `function_div`: the stand-in's own codes, in the
    /// `2009xxx` family of its other refusals.
    pub(crate) tail: &'static str,
    /// What it rehearses, for the docs and the admin screen.
    meaning: &'static str,
}

/// Every test card; `docs/qa-kit.md` lists the same table (`tests/qa_gateway.rs` checks
/// each documented number against the stand-in).
pub(crate) const TEST_CARDS: &[TestCard] = &[
    TestCard {
        number: "4000000000000002",
        tail: "2009101",
        meaning: "declined by the card company (取引不可)",
    },
    TestCard {
        number: "4000000000000069",
        tail: "2009102",
        meaning: "expired card (有効期限切れ)",
    },
    TestCard {
        number: "4000000000003220",
        tail: "2009103",
        meaning: "3-D Secure required (本人認証が必要)",
    },
    TestCard {
        number: "4000000000009995",
        tail: "2009104",
        meaning: "over the credit limit (限度額超過)",
    },
    TestCard {
        number: "4000000000000127",
        tail: "2009105",
        meaning: "wrong security code (セキュリティコード誤り)",
    },
];

/// The error code `reserve_1` asks for: exactly the gateway's 10-character shape (an
/// upper-case letter, then nine digits, e.g. `A012060001` or `Z010000000`). Anything else in
/// `reserve_1` is an ordinary reserve value and asks for nothing.
pub(crate) fn forced_by_reserve(reserve_1: Option<&str>) -> Option<&str> {
    let code = reserve_1?;
    let bytes = code.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[0].is_ascii_uppercase()
        && bytes[1..].iter().all(u8::is_ascii_digit);
    shaped.then_some(code)
}

/// The test card with this number (separators ignored), if it is one.
pub(crate) fn by_number(card_no: &str) -> Option<&'static TestCard> {
    let digits: String = card_no.chars().filter(char::is_ascii_digit).collect();
    TEST_CARDS.iter().find(|c| c.number == digits)
}

/// The test card whose first six digits are `bin` and whose masked number ends like
/// `masked` (what a token library sends for it).
pub(crate) fn by_parts(bin: &str, masked: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|c| {
        c.number.starts_with(bin)
            && bin.len() == 6
            && masked.len() == c.number.len()
            && masked.ends_with(&c.number[c.number.len() - 4..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn(number: &str) -> bool {
        let sum: u32 = number
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let d = d * 2;
                    if d > 9 { d - 9 } else { d }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    #[test]
    fn test_cards_pass_card_forms_and_are_told_apart_by_bin_and_last_four() {
        for (i, card) in TEST_CARDS.iter().enumerate() {
            assert!(luhn(card.number), "{}", card.number);
            assert_eq!(card.tail.len(), 7);
            let masked = format!("************{}", &card.number[12..]);
            assert_eq!(by_parts(&card.number[..6], &masked), Some(card));
            assert_eq!(by_number(card.number), Some(card));
            for other in &TEST_CARDS[i + 1..] {
                assert_ne!(card.tail, other.tail);
                assert_ne!(card.number[12..], other.number[12..]);
            }
        }
        assert!(luhn("4111111111111111"));
        assert_eq!(by_number("4111 1111 1111 1111"), None);
        assert_eq!(by_parts("411111", "************0002"), None);
        assert_eq!(by_parts("", "************0002"), None);
    }

    #[test]
    fn reserve_1_asks_only_with_a_10_character_code() {
        assert_eq!(forced_by_reserve(Some("A012060001")), Some("A012060001"));
        assert_eq!(forced_by_reserve(Some("Z010000000")), Some("Z010000000"));
        for other in [
            "Z01000000",
            "a012060001",
            "A0120600011",
            "ORDER-MEMO",
            "A01206000x",
        ] {
            assert_eq!(forced_by_reserve(Some(other)), None, "{other}");
        }
        assert_eq!(forced_by_reserve(None), None);
    }
}
