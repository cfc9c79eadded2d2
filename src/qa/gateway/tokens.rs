//! Card tokens as the gateway treats them (kuroneko-webcollect.md §4): 16 characters, single
//! use, valid 30 minutes. The stand-in mints them for its token libraries. By default an A08
//! may carry any 16-character token, so scripted tests can authorise without a browser;
//! `--strict-tokens` accepts only tokens the stand-in minted, within their 30 minutes.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::store::{Bounded, Keyed};

/// Length of every token.
pub(crate) const TOKEN_LEN: usize = 16;

/// How long a minted token may be used.
const TOKEN_TTL: TimeDelta = TimeDelta::minutes(30);

/// Characters of a minted token.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// What the library told the stand-in about the card behind a token (never its number):
/// enough for a stored card's A03 listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardHint {
    /// `************1111`: the last four digits only.
    pub(crate) masking_card_no: Option<String>,
    /// MMYY.
    pub(crate) card_exp: Option<String>,
    /// Holder's name.
    pub(crate) card_owner: Option<String>,
    /// A stored card the token stands for (`createToken` with `cardKey`).
    pub(crate) card_key: Option<String>,
    /// `cardCodeApi`, the brand code of the card number (from its leading digits).
    pub(crate) card_code_api: Option<String>,
    /// The member a token minted with `optServDiv` 01 and `memberId` belongs to: the A08
    /// that spends it stores the card for this member, as the gateway's option service does.
    pub(crate) member_id: Option<String>,
    /// The error tail a test card number asks for (`testcards`): the authorisation that
    /// spends the token is refused with it.
    pub(crate) test_card: Option<String>,
}

/// A token the stand-in has seen: minted by it, or (without `--strict-tokens`) spent in an
/// A08 without having been minted, remembered so that it cannot be spent twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) token: String,
    /// When it was minted; `None` for one the stand-in never minted.
    pub(crate) issued_at: Option<DateTime<Utc>>,
    pub(crate) used: bool,
    pub(crate) card: CardHint,
}

impl Keyed for Token {
    type Key = String;
    fn key(&self) -> String {
        self.token.clone()
    }
}

/// Why a token cannot authorise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// No `token` field.
    Missing,
    /// Not 16 characters.
    Length,
    /// Spent already, or (strict) never minted or older than 30 minutes.
    Refused,
}

/// A fresh random token.
pub(crate) fn mint() -> Result<String, getrandom::Error> {
    let mut token = String::with_capacity(TOKEN_LEN);
    let mut bytes = [0u8; 32];
    while token.len() < TOKEN_LEN {
        getrandom::fill(&mut bytes)?;
        // Rejection sampling keeps every character equally likely (248 = 4 × 62).
        for b in bytes
            .iter()
            .filter(|b| usize::from(**b) < 4 * ALPHABET.len())
        {
            if token.len() < TOKEN_LEN {
                token.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
            }
        }
    }
    Ok(token)
}

/// Checks the shape of an A08's `token` field, before anything is looked up.
pub(crate) fn check_shape(token: Option<&str>) -> Result<&str, TokenError> {
    let token = token.ok_or(TokenError::Missing)?;
    if token.chars().count() == TOKEN_LEN {
        Ok(token)
    } else {
        Err(TokenError::Length)
    }
}

/// What is known of the card behind `token` without spending it (nothing for a token the
/// stand-in never minted).
pub(crate) fn peek(tokens: &Bounded<Token>, token: &str) -> CardHint {
    tokens
        .get(&token.to_string())
        .map(|t| t.card.clone())
        .unwrap_or_default()
}

/// Spends `token` at `now`: what was known of its card, or why it cannot be spent (then
/// nothing changed).
pub(crate) fn spend(
    tokens: &mut Bounded<Token>,
    token: &str,
    strict: bool,
    now: DateTime<Utc>,
) -> Result<CardHint, TokenError> {
    let key = token.to_string();
    match tokens.get_mut(&key) {
        Some(seen) if seen.used => Err(TokenError::Refused),
        Some(seen) => {
            let fresh = seen.issued_at.is_some_and(|at| now - at < TOKEN_TTL);
            if strict && !fresh {
                return Err(TokenError::Refused);
            }
            seen.used = true;
            Ok(seen.card.clone())
        }
        None if strict => Err(TokenError::Refused),
        None => {
            tokens.insert(Token {
                token: key,
                issued_at: None,
                used: true,
                card: CardHint::default(),
            });
            Ok(CardHint::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn minted_tokens_are_16_alphanumerics_and_differ() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_are_single_use_and_strict_mode_wants_minted_fresh_ones() {
        let now = t("2020-04-20T01:00:00Z");
        let mut tokens = Bounded::new(10);
        // Lenient: any token, once.
        assert_eq!(
            spend(&mut tokens, "ABCDEFGHIJKLMNOP", false, now),
            Ok(CardHint::default())
        );
        assert_eq!(
            spend(&mut tokens, "ABCDEFGHIJKLMNOP", false, now),
            Err(TokenError::Refused)
        );
        // Strict: never minted.
        assert_eq!(
            spend(&mut tokens, "QRSTUVWXYZabcdef", true, now),
            Err(TokenError::Refused)
        );
        // Strict: minted, within 30 minutes, once.
        let card = CardHint {
            masking_card_no: Some("************1111".into()),
            ..CardHint::default()
        };
        for (token, at) in [
            ("minted0000000001", now),
            ("minted0000000002", now - TOKEN_TTL),
        ] {
            tokens.insert(Token {
                token: token.into(),
                issued_at: Some(at),
                used: false,
                card: card.clone(),
            });
        }
        assert_eq!(spend(&mut tokens, "minted0000000001", true, now), Ok(card));
        assert_eq!(
            spend(&mut tokens, "minted0000000001", true, now),
            Err(TokenError::Refused)
        );
        assert_eq!(
            spend(&mut tokens, "minted0000000002", true, now),
            Err(TokenError::Refused)
        );
        // The expired one was not spent: lenient mode still takes it.
        assert!(spend(&mut tokens, "minted0000000002", false, now).is_ok());
    }

    #[test]
    fn token_shape() {
        assert_eq!(check_shape(None), Err(TokenError::Missing));
        assert_eq!(check_shape(Some("short")), Err(TokenError::Length));
        assert_eq!(
            check_shape(Some("ABCDEFGHIJKLMNOP")),
            Ok("ABCDEFGHIJKLMNOP")
        );
    }
}
