//! What only tests and the simulator may do to an engine: the account owner's and the market's
//! side of the truth (force a price, make fills misbehave, cancel an order as in the exchange's
//! UI). Kept off `Engine` itself, so what the paper venue offers the agent has none of it.

use rust_decimal::Decimal;

use crate::core::domain::Millis;

use super::super::price::PRICE_MAX;
use super::super::validate::is_on_tick;
use super::{CODE_INVALID_ORDER_ID, CODE_INVALID_PRICE, Engine, EngineReject, FillBehavior};

/// Mutable access to an engine's test hooks.
pub struct TestHooks<'a> {
    engine: &'a mut Engine,
}

impl<'a> TestHooks<'a> {
    pub fn new(engine: &'a mut Engine) -> TestHooks<'a> {
        TestHooks { engine }
    }

    /// Sets the fill behaviour of `symbol` (the symbol must be configured).
    pub fn set_behavior(&mut self, symbol: &str, behavior: FillBehavior) {
        let engine = &mut *self.engine;
        assert!(
            engine.instruments.contains_key(symbol),
            "unknown symbol {symbol}"
        );
        if let Some(fraction) = behavior.partial_fill_fraction {
            assert!(fraction > Decimal::ZERO && fraction < Decimal::ONE);
        }
        if let Some(delay_ms) = behavior.fill_delay_ms {
            assert!(delay_ms >= 0);
        }
        engine.behaviors.insert(symbol.to_string(), behavior);
    }

    /// Forces the current price of `symbol` at `now_ms` (on the price tick), then runs due
    /// fills, limits and triggers against it. The walk continues from this price.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now_ms: Millis,
    ) -> Result<(), EngineReject> {
        let engine = &mut *self.engine;
        let now_ms = engine.advance_and_now(now_ms);
        let instrument = engine.instrument(symbol)?;
        let in_range = price > Decimal::ZERO && price <= Decimal::from(PRICE_MAX);
        if !in_range || !is_on_tick(price, instrument.price_tick) {
            return Err(EngineReject::new(
                CODE_INVALID_PRICE,
                format!("bad price {price}"),
            ));
        }
        engine
            .paths
            .get_mut(symbol)
            .expect("instrument has a path")
            .force(price, now_ms);
        engine.run_due_fills(now_ms);
        engine.run_resting(now_ms);
        Ok(())
    }

    /// Cancels an open order as if the account owner did it in the exchange's UI. For a list
    /// member this cancels only that member.
    pub fn cancel_externally(
        &mut self,
        order_id: &str,
        now_ms: Millis,
    ) -> Result<(), EngineReject> {
        self.engine.cancel_order(now_ms, order_id)
    }

    /// Makes an open MARKET order that has not filled yet fill at `due_ms` (not before the
    /// engine's time), instead of after the configured fill delay: the simulator draws each
    /// order's delay from its distribution. 212 for any other order.
    pub fn set_fill_due(&mut self, order_id: &str, due_ms: Millis) -> Result<(), EngineReject> {
        let engine = &mut *self.engine;
        let index = engine
            .index_by_order_id
            .get(order_id)
            .copied()
            .filter(|index| engine.open.contains(index))
            .filter(|index| engine.orders[*index].report.cumulative_quantity.is_zero())
            .filter(|index| engine.orders[*index].fill_due_ms.is_some())
            .ok_or_else(|| {
                EngineReject::new(
                    CODE_INVALID_ORDER_ID,
                    format!("order {order_id} is not an unfilled MARKET order"),
                )
            })?;
        engine.orders[index].fill_due_ms = Some(due_ms.max(engine.now_ms));
        Ok(())
    }
}
