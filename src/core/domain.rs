//! Domain types shared by every layer: sides, instruments, order requests and the venue's view of
//! an order. Plain data with parsing and formatting; no IO, no clock.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The core receives time only as this value.
pub type Millis = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Side {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_uppercase().as_str() {
            "BUY" => Ok(Side::Buy),
            "SELL" => Ok(Side::Sell),
            _ => Err(format!("unknown side {text:?} (expected BUY or SELL)")),
        }
    }
}

/// How protective orders are placed (DESIGN §1 step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtectionMode {
    /// Entry, SL and TP as one exchange-native OTOCO list.
    Otoco,
    /// SL and TP as one OCO list after the fill.
    Oco,
    /// Two independent trigger orders; fillguard cancels the sibling.
    Separate,
}

impl ProtectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionMode::Otoco => "otoco",
            ProtectionMode::Oco => "oco",
            ProtectionMode::Separate => "separate",
        }
    }
}

impl FromStr for ProtectionMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "otoco" => Ok(ProtectionMode::Otoco),
            "oco" => Ok(ProtectionMode::Oco),
            "separate" => Ok(ProtectionMode::Separate),
            _ => Err(format!(
                "unknown protection mode {text:?} (expected oco, otoco or separate)"
            )),
        }
    }
}

/// Trading rules of one instrument, as the venue states them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_tick: Decimal,
    pub quantity_tick: Decimal,
    pub min_quantity: Decimal,
    /// Minimum order value in the quote asset.
    pub min_notional: Decimal,
    /// Fee rate of a taker fill (0.001 = 0.1 %), used to size protection before the fill.
    pub taker_fee_rate: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    Market,
    Limit,
    /// Market order once the trigger price is crossed against the position.
    StopLoss,
    /// Market order once the trigger price is crossed in favour of the position.
    TakeProfit,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::StopLoss => "STOP_LOSS",
            OrderType::TakeProfit => "TAKE_PROFIT",
        }
    }
}

impl FromStr for OrderType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "MARKET" => Ok(OrderType::Market),
            "LIMIT" => Ok(OrderType::Limit),
            "STOP_LOSS" => Ok(OrderType::StopLoss),
            "TAKE_PROFIT" => Ok(OrderType::TakeProfit),
            _ => Err(format!("unknown order type {text:?}")),
        }
    }
}

/// An order as fillguard asks a venue to create it. Exactly one of `quantity` and `notional` is
/// set; `notional` only for MARKET BUY entries. `price` only for LIMIT, `trigger_price` only for
/// STOP_LOSS and TAKE_PROFIT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub client_oid: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Option<Decimal>,
    pub notional: Option<Decimal>,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
}

/// Order statuses of Crypto.com Exchange v1. A partial fill is ACTIVE with a non-zero
/// cumulative quantity; there is no PARTIALLY_FILLED status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VenueStatus {
    New,
    Pending,
    Active,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl VenueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VenueStatus::New => "NEW",
            VenueStatus::Pending => "PENDING",
            VenueStatus::Active => "ACTIVE",
            VenueStatus::Filled => "FILLED",
            VenueStatus::Canceled => "CANCELED",
            VenueStatus::Rejected => "REJECTED",
            VenueStatus::Expired => "EXPIRED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            VenueStatus::Filled
                | VenueStatus::Canceled
                | VenueStatus::Rejected
                | VenueStatus::Expired
        )
    }
}

impl FromStr for VenueStatus {
    type Err = String;

    /// Strict: an unknown status is an error, never a guess.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "NEW" => Ok(VenueStatus::New),
            "PENDING" => Ok(VenueStatus::Pending),
            "ACTIVE" => Ok(VenueStatus::Active),
            "FILLED" => Ok(VenueStatus::Filled),
            "CANCELED" => Ok(VenueStatus::Canceled),
            "REJECTED" => Ok(VenueStatus::Rejected),
            "EXPIRED" => Ok(VenueStatus::Expired),
            _ => Err(format!("unknown order status {text:?}")),
        }
    }
}

/// The venue's view of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReport {
    pub order_id: String,
    pub client_oid: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub status: VenueStatus,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    pub cumulative_quantity: Decimal,
    /// Volume-weighted fill price; zero until there are fills.
    pub avg_price: Decimal,
    pub cumulative_fee: Decimal,
    pub fee_currency: String,
    pub list_id: Option<String>,
    /// Rejection or cancel reason code, when the venue gives one.
    pub reason: Option<i64>,
    pub update_time_ms: Millis,
}

/// Acknowledgement of a single created order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAck {
    pub order_id: String,
    pub client_oid: String,
}

/// Acknowledgement of a created contingency list (OCO, OTOCO). Leg order ids are learned by
/// looking the legs up by client_oid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAck {
    pub list_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub open_time_ms: Millis,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
}
