//! Account methods of the simulator: `user-balance`, `get-fee-rate` and
//! `get-instrument-fee-rate` (reference §4.10 and the v1 docs). The paper account has one fee
//! rate for makers and takers, spot and derivatives alike, reported in basis points.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::exchange::Simulator;
use super::private::invalid;
use super::wire::{self, ApiError};

/// Basis points per unit of a rate.
const BASIS_POINTS_PER_UNIT: i64 = 10_000;

fn basis_points(rate: Decimal) -> String {
    wire::decimal_text(rate * Decimal::from(BASIS_POINTS_PER_UNIT))
}

impl Simulator {
    /// One aggregate row whose `position_balances` hold every asset: `quantity` the total,
    /// `reserved_qty` what open orders reserve.
    pub(super) fn user_balance(&self) -> Value {
        let positions: Vec<Value> = self
            .engine
            .balances()
            .into_iter()
            .map(|(asset, total)| {
                let free = self.engine.free_balance(&asset);
                json!({
                    "instrument_name": asset,
                    "quantity": wire::decimal_text(total),
                    "reserved_qty": wire::decimal_text(total - free),
                    "max_withdrawal_balance": wire::decimal_text(free),
                })
            })
            .collect();
        json!({"data": [{"instrument_name": "USD", "position_balances": positions}]})
    }

    /// The account's 30-day tiers and effective rates (tier "0": the paper account trades no
    /// volume tiers).
    pub(super) fn fee_rate(&self) -> Value {
        let rate = basis_points(self.engine.fee_rate());
        json!({
            "spot_tier": "0",
            "deriv_tier": "0",
            "effective_spot_maker_rate_bps": rate,
            "effective_spot_taker_rate_bps": rate,
            "effective_deriv_maker_rate_bps": rate,
            "effective_deriv_taker_rate_bps": rate,
        })
    }

    /// The rates of one instrument: `instrument_name` is required (40004), and must be known
    /// (209).
    pub(super) fn instrument_fee_rate(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let symbol = wire::string_param(params, "instrument_name")?
            .ok_or_else(|| invalid("instrument_name is required"))?;
        let instrument = self.engine.instrument(symbol)?;
        let rate = basis_points(instrument.taker_fee_rate);
        Ok(json!({
            "instrument_name": instrument.symbol,
            "effective_maker_rate_bps": rate,
            "effective_taker_rate_bps": rate,
        }))
    }
}
