//! Stored cards (お預かりカード) per `trader_code` and `member_id`: an authorisation in the
//! option service (`option_service_div=01`, a token minted for a member, …) stores one, an
//! authorisation with its `card_key` pays with it, A03 lists them, A04 changes one, A05
//! deletes one. Only what the gateway shows back is kept: the brand code, a masked number,
//! the expiry and the holder's name.

use serde::{Deserialize, Serialize};

use super::store::Keyed;
use super::tokens::CardHint;

/// Cards one member may keep; storing another replaces the oldest.
pub(crate) const MAX_CARDS: usize = 3;

/// A stored card, as A03 lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Card {
    pub(crate) card_key: u32,
    /// `cardCodeApi`: the brand code of the card number (the `settleMethod` codes). State
    /// files written before it existed read as VISA, the stand-in's brand for the unknown.
    #[serde(default = "unknown_brand")]
    pub(crate) card_code_api: String,
    pub(crate) masking_card_no: String,
    /// MMYY.
    pub(crate) card_exp: String,
    pub(crate) card_owner: String,
    /// Last authorisation with this card, `yyyyMMddHHmmss` JST.
    pub(crate) last_credit_date: String,
}

/// One member's cards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    trader_code: String,
    member_id: String,
    pub(crate) cards: Vec<Card>,
    /// The next `cardKey`: keys are never reused, so a stale key cannot reach another card.
    next_key: u32,
}

impl Keyed for Member {
    type Key = (String, String);
    fn key(&self) -> (String, String) {
        (self.trader_code.clone(), self.member_id.clone())
    }
}

/// No card with that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchCard;

/// Shown for what a scripted authorisation did not say about its card.
const UNKNOWN_MASK: &str = "************0000";
const UNKNOWN_EXP: &str = "1299";
const UNKNOWN_OWNER: &str = "STAND IN";

fn unknown_brand() -> String {
    super::orders::card_brand(None).to_string()
}

impl Member {
    /// A member with no cards yet.
    pub(crate) fn new(trader_code: &str, member_id: &str) -> Self {
        Self {
            trader_code: trader_code.to_string(),
            member_id: member_id.to_string(),
            cards: Vec::new(),
            next_key: 1,
        }
    }

    /// An authorisation at `date`: with a stored card's key, that card's last use moves to
    /// `date`; otherwise the card is stored (replacing the oldest past [`MAX_CARDS`]).
    pub(crate) fn authorised(&mut self, card: &CardHint, date: &str) {
        let known = card
            .card_key
            .as_deref()
            .and_then(|k| k.parse::<u32>().ok())
            .and_then(|k| self.cards.iter_mut().find(|c| c.card_key == k));
        if let Some(stored) = known {
            stored.last_credit_date = date.to_string();
            return;
        }
        if self.cards.len() >= MAX_CARDS {
            self.cards.remove(0);
        }
        self.cards.push(Card {
            card_key: self.next_key,
            card_code_api: card.card_code_api.clone().unwrap_or_else(unknown_brand),
            masking_card_no: card
                .masking_card_no
                .clone()
                .unwrap_or_else(|| UNKNOWN_MASK.to_string()),
            card_exp: card
                .card_exp
                .clone()
                .unwrap_or_else(|| UNKNOWN_EXP.to_string()),
            card_owner: card
                .card_owner
                .clone()
                .unwrap_or_else(|| UNKNOWN_OWNER.to_string()),
            last_credit_date: date.to_string(),
        });
        self.next_key += 1;
    }

    /// The stored card `key` (a `cardKey` as the merchant sends it).
    pub(crate) fn card(&self, key: &str) -> Result<&Card, NoSuchCard> {
        let key: u32 = key.parse().map_err(|_| NoSuchCard)?;
        self.cards
            .iter()
            .find(|c| c.card_key == key)
            .ok_or(NoSuchCard)
    }

    fn card_mut(&mut self, key: &str) -> Result<&mut Card, NoSuchCard> {
        let key: u32 = key.parse().map_err(|_| NoSuchCard)?;
        self.cards
            .iter_mut()
            .find(|c| c.card_key == key)
            .ok_or(NoSuchCard)
    }

    /// A04: new expiry and/or holder's name for a stored card.
    pub(crate) fn update(
        &mut self,
        key: &str,
        card_exp: Option<&str>,
        card_owner: Option<&str>,
    ) -> Result<(), NoSuchCard> {
        let card = self.card_mut(key)?;
        if let Some(exp) = card_exp {
            card.card_exp = exp.to_string();
        }
        if let Some(owner) = card_owner {
            card.card_owner = owner.to_string();
        }
        Ok(())
    }

    /// A05: forgets a stored card.
    pub(crate) fn delete(&mut self, key: &str) -> Result<(), NoSuchCard> {
        let key = self.card_mut(key)?.card_key;
        self.cards.retain(|c| c.card_key != key);
        Ok(())
    }
}

/// `************1111` for a card number: all but the last four digits hidden.
pub(crate) fn mask(card_no: &str) -> Option<String> {
    let digits: Vec<char> = card_no.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 4).then(|| {
        let (hidden, shown) = digits.split_at(digits.len() - 4);
        "*".repeat(hidden.len()) + &shown.iter().collect::<String>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_stored_updated_and_deleted() {
        let mut m = Member::new("123456789", "member-1");
        let hint = CardHint {
            masking_card_no: mask("4111 1111 1111 1111"),
            card_exp: Some("1230".into()),
            card_owner: Some("TARO YAMATO".into()),
            ..CardHint::default()
        };
        m.authorised(&hint, "20200420010000");
        assert_eq!(m.cards.len(), 1);
        assert_eq!(m.cards[0].masking_card_no, "************1111");
        // Paying again with the stored card (cardKey 1) only moves its last use.
        let stored = CardHint {
            card_key: Some("1".into()),
            ..CardHint::default()
        };
        m.authorised(&stored, "20200420020000");
        assert_eq!(m.cards.len(), 1);
        assert_eq!(m.cards[0].last_credit_date, "20200420020000");
        m.update("1", Some("0131"), None).unwrap();
        assert_eq!(m.cards[0].card_exp, "0131");
        assert_eq!(m.update("9", None, None), Err(NoSuchCard));
        for _ in 0..MAX_CARDS {
            m.authorised(&CardHint::default(), "20200420030000");
        }
        assert_eq!(m.cards.len(), MAX_CARDS);
        assert_eq!(m.cards[0].card_key, 2, "the oldest card gave way");
        m.delete("2").unwrap();
        assert_eq!(m.delete("2"), Err(NoSuchCard));
        assert_eq!(
            m.cards.iter().map(|c| c.card_key).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}
