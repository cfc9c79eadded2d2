//! Orders as the gateway tracks them, per `trader_code` and `order_no`: authorised by
//! A01/A08/F01 or a link-method settlement (statusInfo 4), shipped by E01/F02 (30),
//! amount changed by A07, cancelled by A06 (40). E04/F04 report them.

use serde::{Deserialize, Serialize};

use super::store::Keyed;

/// `statusInfo` values the stand-in uses (kuroneko-webcollect.md §5).
pub(crate) mod status {
    /// 与信完了: authorised.
    pub(crate) const AUTHORISED: u8 = 4;
    /// 精算確定待ち: shipment entered, settlement pending.
    pub(crate) const SHIPPED: u8 = 30;
    /// 取消: cancelled.
    pub(crate) const CANCELLED: u8 = 40;
}

/// One order and what the gateway reports about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) trader_code: String,
    pub(crate) order_no: String,
    /// `deviceDiv` as sent (1 smartphone, 2 PC, 3 other).
    pub(crate) device_div: String,
    /// Authorisation time, `yyyyMMddHHmmss` JST.
    pub(crate) settle_date: String,
    pub(crate) settle_price: u64,
    /// `settleMethod` (card brand code).
    pub(crate) settle_method: String,
    pub(crate) status: u8,
    pub(crate) member_id: Option<String>,
    pub(crate) pay_way: String,
    /// `crdCResCd`.
    pub(crate) approval: String,
    pub(crate) slip_no: Option<String>,
    pub(crate) scheduled_shipping_date: Option<String>,
    pub(crate) cancel_date: Option<String>,
}

impl Keyed for Order {
    type Key = (String, String);
    fn key(&self) -> (String, String) {
        (self.trader_code.clone(), self.order_no.clone())
    }
}

/// The order is in a state that does not allow the change (e.g. cancelling twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrongState;

impl Order {
    fn live(&self) -> Result<(), WrongState> {
        if self.status == status::CANCELLED {
            Err(WrongState)
        } else {
            Ok(())
        }
    }

    /// A07: a new amount for a live order.
    pub(crate) fn change_price(&mut self, price: u64) -> Result<(), WrongState> {
        self.live()?;
        self.settle_price = price;
        Ok(())
    }

    /// A06: cancels a live order.
    pub(crate) fn cancel(&mut self, date: &str) -> Result<(), WrongState> {
        self.live()?;
        self.status = status::CANCELLED;
        self.cancel_date = Some(date.to_string());
        Ok(())
    }

    /// E01/F02: a shipment for a live order (again: a corrected slip number).
    pub(crate) fn ship(&mut self, slip_no: Option<&str>) -> Result<(), WrongState> {
        self.live()?;
        self.status = status::SHIPPED;
        if let Some(slip) = slip_no {
            self.slip_no = Some(slip.to_string());
        }
        Ok(())
    }

    /// E02/F03: takes back a shipment.
    pub(crate) fn unship(&mut self) -> Result<(), WrongState> {
        if self.status != status::SHIPPED {
            return Err(WrongState);
        }
        self.status = status::AUTHORISED;
        self.slip_no = None;
        Ok(())
    }

    /// E03: a new scheduled shipping date.
    pub(crate) fn change_date(&mut self, date: Option<&str>) -> Result<(), WrongState> {
        self.live()?;
        if let Some(date) = date {
            self.scheduled_shipping_date = Some(date.to_string());
        }
        Ok(())
    }

    /// A11: authorises a live order again.
    pub(crate) fn reauthorise(&mut self, date: &str, approval: &str) -> Result<(), WrongState> {
        self.live()?;
        self.settle_date = date.to_string();
        self.approval = approval.to_string();
        Ok(())
    }
}

/// `settleMethod` of a card number, by its leading digits (kuroneko-webcollect.md §5); VISA
/// when unknown (a token hides the number).
pub(crate) fn card_brand(card_no: Option<&str>) -> &'static str {
    let digits = card_no.unwrap_or("");
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| digits.starts_with(p));
    if starts(&["34", "37"]) {
        "12" // AMEX
    } else if starts(&["35"]) {
        "3" // JCB
    } else if starts(&["36", "38", "30"]) {
        "2" // Diners
    } else if starts(&["5", "2"]) {
        "10" // MASTER
    } else {
        "9" // VISA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            trader_code: "123456789".into(),
            order_no: "1".into(),
            device_div: "2".into(),
            settle_date: "20200420010000".into(),
            settle_price: 1500,
            settle_method: "9".into(),
            status: status::AUTHORISED,
            member_id: None,
            pay_way: "1".into(),
            approval: "0".into(),
            slip_no: None,
            scheduled_shipping_date: None,
            cancel_date: None,
        }
    }

    #[test]
    fn transitions_follow_the_gateway() {
        let mut o = order();
        assert_eq!(o.unship(), Err(WrongState));
        o.ship(Some("123456789012")).unwrap();
        assert_eq!(o.status, status::SHIPPED);
        o.unship().unwrap();
        assert_eq!((o.status, o.slip_no.as_deref()), (status::AUTHORISED, None));
        o.change_price(1200).unwrap();
        o.cancel("20200420013000").unwrap();
        assert_eq!(o.status, status::CANCELLED);
        assert_eq!(o.cancel_date.as_deref(), Some("20200420013000"));
        assert_eq!(o.cancel("20200420013100"), Err(WrongState));
        assert_eq!(o.change_price(1), Err(WrongState));
        assert_eq!(o.ship(None), Err(WrongState));
        assert_eq!(o.settle_price, 1200);
    }

    #[test]
    fn brands_by_leading_digits() {
        assert_eq!(card_brand(Some("4111111111111111")), "9");
        assert_eq!(card_brand(Some("5555555555554444")), "10");
        assert_eq!(card_brand(Some("3530111333300000")), "3");
        assert_eq!(card_brand(Some("378282246310005")), "12");
        assert_eq!(card_brand(Some("36000000000008")), "2");
        assert_eq!(card_brand(None), "9");
    }
}
