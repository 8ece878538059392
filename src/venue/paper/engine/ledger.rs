//! Bookkeeping: balances and reservations, fees, the fill ledger (one `Fill` per execution,
//! with its fee), order status after a fill, and the list rules a fill sets off. Every change
//! of money goes through here, and `check_invariants` states what must always hold.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::core::domain::{Millis, OrderType, Side, VenueStatus};

use super::{AVERAGE_PRICE_DECIMALS, Engine, Role, TRADE_ID_FIRST};

/// Whether a fill added liquidity (a resting LIMIT order) or took it (MARKET, triggers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

impl Liquidity {
    pub fn as_str(self) -> &'static str {
        match self {
            Liquidity::Maker => "MAKER",
            Liquidity::Taker => "TAKER",
        }
    }
}

/// One execution of an order, as `get-trades` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub trade_id: String,
    pub order_id: String,
    /// The order's client_oid when it filled.
    pub client_oid: String,
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
    pub price: Decimal,
    /// What the fill cost (never negative), in `fee_currency`: the asset received.
    pub fee: Decimal,
    pub fee_currency: String,
    pub liquidity: Liquidity,
    pub time_ms: Millis,
}

impl Engine {
    /// Books one fill: balances, fee, cumulative figures and status; FILLED when complete. Then
    /// the list rules: a filled OTOCO entry arms its legs, a leg's fill cancels its siblings.
    pub(super) fn apply_fill(
        &mut self,
        index: usize,
        quantity: Decimal,
        price: Decimal,
        time_ms: Millis,
    ) {
        assert!(quantity > Decimal::ZERO);
        let instrument = self.instruments[&self.orders[index].report.symbol].clone();
        let value = quantity * price;
        let side = self.orders[index].report.side;
        let (spend_asset, spend, receive_asset, receive, fee) = match side {
            Side::Buy => {
                let fee = quantity * self.taker_fee_rate;
                (
                    instrument.quote,
                    value,
                    instrument.base,
                    quantity - fee,
                    fee,
                )
            }
            Side::Sell => {
                let fee = value * self.taker_fee_rate;
                (
                    instrument.base,
                    quantity,
                    instrument.quote,
                    value - fee,
                    fee,
                )
            }
        };
        let from_reservation = spend.min(self.orders[index].reserved);
        self.release(index, from_reservation);
        let balance = self.balances.entry(spend_asset.clone()).or_default();
        assert!(*balance >= spend, "fill would make {spend_asset} negative");
        *balance -= spend;
        *self.balances.entry(receive_asset).or_default() += receive;
        assert!(self.free_balance(&spend_asset) >= Decimal::ZERO);
        self.record_fill(index, quantity, price, fee, time_ms);
        let report = &self.orders[index].report;
        if report.cumulative_quantity == report.quantity {
            self.finish(index, VenueStatus::Filled, None, time_ms);
        }
        self.after_fill(index, time_ms);
    }

    /// Adds one fill to the order's cumulative figures and to the fill ledger.
    fn record_fill(
        &mut self,
        index: usize,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        time_ms: Millis,
    ) {
        let value = quantity * price;
        let trade_number = u64::try_from(self.fills.len()).expect("fewer fills than u64::MAX");
        let order = &mut self.orders[index];
        order.cumulative_value += value;
        let report = &mut order.report;
        report.cumulative_quantity += quantity;
        assert!(report.cumulative_quantity <= report.quantity);
        report.avg_price = (order.cumulative_value / report.cumulative_quantity)
            .round_dp_with_strategy(
                AVERAGE_PRICE_DECIMALS,
                RoundingStrategy::MidpointNearestEven,
            );
        report.cumulative_fee += fee;
        report.status = VenueStatus::Active;
        report.update_time_ms = time_ms;
        order.fill_due_ms = None;
        let liquidity = if report.order_type == OrderType::Limit {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        };
        let fill = Fill {
            trade_id: (TRADE_ID_FIRST + trade_number).to_string(),
            order_id: report.order_id.clone(),
            client_oid: report.client_oid.clone(),
            symbol: report.symbol.clone(),
            side: report.side,
            quantity,
            price,
            fee,
            fee_currency: report.fee_currency.clone(),
            liquidity,
            time_ms,
        };
        self.fills.push(fill);
    }

    pub(super) fn after_fill(&mut self, index: usize, time_ms: Millis) {
        match self.orders[index].role {
            Role::OcoLeg | Role::OtocoLeg => {
                for sibling in self.open_siblings(index) {
                    self.finish(sibling, VenueStatus::Canceled, None, time_ms);
                }
            }
            Role::OtocoEntry if self.orders[index].report.status == VenueStatus::Filled => {
                let list_id = self.orders[index].report.list_id.clone();
                let list_id = list_id.expect("an OTOCO entry has a list");
                for member in self.lists[&list_id].clone() {
                    if self.orders[member].role == Role::OtocoLeg {
                        self.orders[member].armed = true;
                    }
                }
            }
            Role::OtocoEntry | Role::Single => {}
        }
    }

    /// Open legs of the same list other than `index` (never an OTOCO entry).
    pub(super) fn open_siblings(&self, index: usize) -> Vec<usize> {
        let Some(list_id) = &self.orders[index].report.list_id else {
            return Vec::new();
        };
        self.lists[list_id]
            .iter()
            .copied()
            .filter(|member| *member != index && self.open.contains(member))
            .filter(|member| matches!(self.orders[*member].role, Role::OcoLeg | Role::OtocoLeg))
            .collect()
    }

    /// Ends an open order with a terminal status and releases what it still reserves.
    pub(super) fn finish(
        &mut self,
        index: usize,
        status: VenueStatus,
        reason: Option<i64>,
        time_ms: Millis,
    ) {
        assert!(status.is_terminal());
        assert!(
            self.open.remove(&index),
            "finishing an order that is not open"
        );
        let reserved = self.orders[index].reserved;
        self.release(index, reserved);
        let order = &mut self.orders[index];
        order.fill_due_ms = None;
        order.report.status = status;
        order.report.reason = reason;
        order.report.update_time_ms = time_ms;
    }

    pub(super) fn reserve(&mut self, index: usize, amount: Decimal) {
        assert!(amount >= Decimal::ZERO);
        let order = &mut self.orders[index];
        assert!(order.reserved.is_zero());
        order.reserved = amount;
        let asset = order.reserve_asset.clone();
        *self.reserved.entry(asset.clone()).or_default() += amount;
        assert!(
            self.free_balance(&asset) >= Decimal::ZERO,
            "over-reserved {asset}"
        );
    }

    pub(super) fn release(&mut self, index: usize, amount: Decimal) {
        let order = &mut self.orders[index];
        assert!(amount >= Decimal::ZERO && amount <= order.reserved);
        if amount.is_zero() {
            return;
        }
        order.reserved -= amount;
        let total = self
            .reserved
            .get_mut(&order.reserve_asset)
            .expect("a reservation has an asset entry");
        *total -= amount;
        assert!(*total >= Decimal::ZERO);
    }

    /// Checks the bookkeeping invariants (for tests and the simulator).
    pub fn check_invariants(&self) {
        let mut reserved: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (index, order) in self.orders.iter().enumerate() {
            let open = self.open.contains(&index);
            assert_eq!(open, !order.report.status.is_terminal());
            assert!(open || order.reserved.is_zero());
            assert!(order.report.cumulative_quantity <= order.report.quantity);
            *reserved.entry(&order.reserve_asset).or_default() += order.reserved;
        }
        for (asset, total) in &self.balances {
            assert!(*total >= Decimal::ZERO, "{asset} negative");
            assert!(
                self.free_balance(asset) >= Decimal::ZERO,
                "{asset} over-reserved"
            );
        }
        for (asset, amount) in reserved {
            let booked = self.reserved.get(asset).copied().unwrap_or_default();
            assert_eq!(booked, amount, "reservations of {asset} disagree");
        }
    }
}
