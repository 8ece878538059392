//! Time and fills: `advance_to` steps the price paths and, at every step, fills due MARKET
//! orders at the price of their moment, LIMIT orders at their limit price once crossed, and
//! armed triggers completely at the crossing step's price. What a fill books is in `ledger`.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::core::domain::{Millis, OrderType, Side, VenueStatus};

use super::super::validate;
use super::{CODE_BELOW_MINIMUM, CODE_INSUFFICIENT_BALANCE, Engine, Role, STEPS_PER_ADVANCE_MAX};

impl Engine {
    /// Steps the price paths up to `now_ms` and processes due fills, limits and triggers. Time
    /// never goes back: an earlier `now_ms` does nothing. At most `STEPS_PER_ADVANCE_MAX` steps
    /// run per call; the steps before them are skipped and the price holds over them.
    pub fn advance_to(&mut self, now_ms: Millis) {
        if now_ms <= self.now_ms {
            return;
        }
        let steps = self.steps_due(now_ms);
        for _ in 0..steps {
            let step_ms = self.next_step_ms;
            // Fills due before this step see the price before it.
            self.run_due_fills(step_ms - 1);
            for path in self.paths.values_mut() {
                path.step(step_ms);
            }
            self.run_due_fills(step_ms);
            self.run_resting(step_ms);
            self.next_step_ms = step_ms.saturating_add(self.step_ms);
        }
        self.run_due_fills(now_ms);
        self.now_ms = now_ms;
    }

    /// Number of steps to run up to `now_ms`; moves `next_step_ms` past skipped steps.
    pub(super) fn steps_due(&mut self, now_ms: Millis) -> i64 {
        if self.next_step_ms > now_ms {
            return 0;
        }
        let gap_ms = i128::from(now_ms) - i128::from(self.next_step_ms);
        let steps = gap_ms / i128::from(self.step_ms) + 1;
        let steps_max = i128::from(STEPS_PER_ADVANCE_MAX);
        if steps > steps_max {
            let skipped_ms = (steps - steps_max) * i128::from(self.step_ms);
            let next_step_ms = i128::from(self.next_step_ms) + skipped_ms;
            self.next_step_ms = Millis::try_from(next_step_ms).unwrap_or(Millis::MAX);
            return STEPS_PER_ADVANCE_MAX;
        }
        i64::try_from(steps).expect("at most STEPS_PER_ADVANCE_MAX")
    }

    /// Fills MARKET orders (and remainders) whose fill time is at or before `up_to_ms`.
    pub(super) fn run_due_fills(&mut self, up_to_ms: Millis) {
        let due: Vec<(usize, Millis)> = self
            .open
            .iter()
            .filter_map(|index| {
                let due_ms = self.orders[*index].fill_due_ms?;
                (due_ms <= up_to_ms).then_some((*index, due_ms))
            })
            .collect();
        for (index, due_ms) in due {
            if self.open.contains(&index) {
                self.fill_market(index, due_ms);
            }
        }
    }

    /// Matches armed LIMIT and trigger orders, in creation order, against the current prices.
    pub(super) fn run_resting(&mut self, time_ms: Millis) {
        let open: Vec<usize> = self.open.iter().copied().collect();
        for index in open {
            // An earlier order of this pass may have cancelled this one, or armed it.
            if !self.open.contains(&index) || !self.orders[index].armed {
                continue;
            }
            match self.orders[index].report.order_type {
                OrderType::Limit => self.match_limit(index, time_ms),
                OrderType::StopLoss | OrderType::TakeProfit => self.match_trigger(index, time_ms),
                OrderType::Market => {}
            }
        }
    }

    pub(super) fn fill_market(&mut self, index: usize, time_ms: Millis) {
        let symbol = self.orders[index].report.symbol.clone();
        if self.behavior(&symbol).never_fill {
            return;
        }
        let price = self.price_of(&symbol);
        let Some(quantity) = self.resolve_quantity(index, price, time_ms) else {
            return;
        };
        let remaining = quantity - self.orders[index].report.cumulative_quantity;
        let fill_quantity = self.entry_fill_quantity(index, remaining);
        self.fill_entry(index, fill_quantity, price, time_ms);
    }

    pub(super) fn match_limit(&mut self, index: usize, time_ms: Millis) {
        let report = &self.orders[index].report;
        let limit_price = report.price.expect("a LIMIT order has a price");
        let market_price = self.price_of(&report.symbol);
        let crossed = match report.side {
            Side::Buy => market_price <= limit_price,
            Side::Sell => market_price >= limit_price,
        };
        if !crossed {
            return;
        }
        let remaining = report.quantity - report.cumulative_quantity;
        if self.orders[index].role == Role::OcoLeg {
            self.fill_entry(index, remaining, limit_price, time_ms);
            return;
        }
        if self.behavior(&report.symbol).never_fill {
            return;
        }
        let fill_quantity = self.entry_fill_quantity(index, remaining);
        self.fill_entry(index, fill_quantity, limit_price, time_ms);
    }

    /// A crossed trigger fills completely at the current price, unless the free balance (plus
    /// what its siblings reserve, which it would release) is short: then it is REJECTED (306).
    pub(super) fn match_trigger(&mut self, index: usize, time_ms: Millis) {
        let report = &self.orders[index].report;
        assert_eq!(report.status, VenueStatus::Pending);
        let trigger_price = report
            .trigger_price
            .expect("a trigger order has a trigger price");
        let market_price = self.price_of(&report.symbol);
        let fires_below = matches!(
            (report.side, report.order_type),
            (Side::Sell, OrderType::StopLoss) | (Side::Buy, OrderType::TakeProfit)
        );
        let crossed = if fires_below {
            market_price <= trigger_price
        } else {
            market_price >= trigger_price
        };
        if !crossed {
            return;
        }
        let quantity = report.quantity;
        let siblings = self.open_siblings(index);
        let asset = &self.orders[index].reserve_asset;
        let sibling_reserved: Decimal = siblings
            .iter()
            .filter(|sibling| self.orders[**sibling].reserve_asset == *asset)
            .map(|sibling| self.orders[*sibling].reserved)
            .sum();
        if !self.can_afford(index, quantity, market_price, sibling_reserved) {
            let reason = Some(CODE_INSUFFICIENT_BALANCE);
            self.finish(index, VenueStatus::Rejected, reason, time_ms);
            return;
        }
        for sibling in siblings {
            self.finish(sibling, VenueStatus::Canceled, None, time_ms);
        }
        self.apply_fill(index, quantity, market_price, time_ms);
    }

    /// The quantity of an order; for a MARKET BUY by notional it is fixed at the first fill as
    /// notional / price rounded down to the quantity tick. `None` when it was rejected (415).
    pub(super) fn resolve_quantity(
        &mut self,
        index: usize,
        price: Decimal,
        time_ms: Millis,
    ) -> Option<Decimal> {
        let order = &self.orders[index];
        let Some(notional) = order.notional else {
            return Some(order.report.quantity);
        };
        if !order.report.quantity.is_zero() {
            return Some(order.report.quantity);
        }
        let instrument = &self.instruments[&order.report.symbol];
        let tick = instrument.quantity_tick;
        let ticks = notional
            .checked_div(price)
            .and_then(|quantity| quantity.checked_div(tick))
            .map(|ticks| ticks.round_dp_with_strategy(0, RoundingStrategy::ToZero));
        let mut quantity = ticks.map_or(Decimal::ZERO, |ticks| ticks * tick);
        // A quantity beyond what any order may hold is rejected like one too small.
        if quantity > Decimal::from(validate::QUANTITY_MAX) {
            quantity = Decimal::ZERO;
        }
        // The divisions round internally at 28 digits; never spend more than the notional.
        if quantity * price > notional {
            quantity -= tick;
        }
        if quantity <= Decimal::ZERO || quantity < instrument.min_quantity {
            self.finish(
                index,
                VenueStatus::Rejected,
                Some(CODE_BELOW_MINIMUM),
                time_ms,
            );
            return None;
        }
        self.orders[index].report.quantity = quantity;
        Some(quantity)
    }

    /// With a partial-fill behaviour, an entry's first fill covers only the fraction (rounded
    /// down to the quantity tick); otherwise, and afterwards, all of `remaining`.
    pub(super) fn entry_fill_quantity(&self, index: usize, remaining: Decimal) -> Decimal {
        let report = &self.orders[index].report;
        let fraction = self.behavior(&report.symbol).partial_fill_fraction;
        let Some(fraction) = fraction else {
            return remaining;
        };
        if !report.cumulative_quantity.is_zero() || self.orders[index].role == Role::OcoLeg {
            return remaining;
        }
        let tick = self.instruments[&report.symbol].quantity_tick;
        let ticks =
            (remaining * fraction / tick).round_dp_with_strategy(0, RoundingStrategy::ToZero);
        let partial = ticks * tick;
        if partial <= Decimal::ZERO || partial >= remaining {
            remaining
        } else {
            partial
        }
    }

    /// Fills `quantity` of a MARKET or LIMIT order, or rejects it (306) when even its own
    /// reservation plus the free balance cannot pay. A partial fill then expires or waits.
    pub(super) fn fill_entry(
        &mut self,
        index: usize,
        quantity: Decimal,
        price: Decimal,
        time_ms: Millis,
    ) {
        if !self.can_afford(index, quantity, price, Decimal::ZERO) {
            let reason = Some(CODE_INSUFFICIENT_BALANCE);
            self.finish(index, VenueStatus::Rejected, reason, time_ms);
            return;
        }
        self.apply_fill(index, quantity, price, time_ms);
        if !self.open.contains(&index) {
            return;
        }
        let symbol = self.orders[index].report.symbol.clone();
        if self.behavior(&symbol).expire_after_partial {
            self.finish(index, VenueStatus::Expired, None, time_ms);
            return;
        }
        if self.orders[index].report.order_type == OrderType::Market {
            let delay_ms = self.fill_delay_for(&symbol);
            self.orders[index].fill_due_ms = Some(time_ms.saturating_add(delay_ms));
        }
    }

    pub(super) fn can_afford(
        &self,
        index: usize,
        quantity: Decimal,
        price: Decimal,
        extra: Decimal,
    ) -> bool {
        let order = &self.orders[index];
        let spend = match order.report.side {
            Side::Buy => quantity * price,
            Side::Sell => quantity,
        };
        self.free_balance(&order.reserve_asset) + order.reserved + extra >= spend
    }
}
