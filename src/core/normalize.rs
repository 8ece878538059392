//! Exact-decimal normalization of quantities and prices to an instrument's ticks and minimums,
//! and the plain-string form every decimal is sent in. Pure functions; every rounding names its
//! strategy. Every product, quotient and sum is checked: values come from the exchange, and an
//! overflow is `Unprotectable::Overflow` (or `None` from a `checked_` function), never a panic.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::core::domain::{Instrument, Side};

const ONE_HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Largest multiple of `tick` that is ≤ `value` (for value ≥ 0). A zero tick leaves the value.
/// Zero when the result cannot be computed (`checked_floor_to_tick` overflows): the safe side
/// for a quantity, which is never more than the value.
pub fn floor_to_tick(value: Decimal, tick: Decimal) -> Decimal {
    checked_floor_to_tick(value, tick).unwrap_or(Decimal::ZERO)
}

/// `floor_to_tick`, or `None` when the quotient `value / tick` or the multiple overflows
/// `Decimal` (a tick far below the value, or a value near `Decimal::MAX`).
pub fn checked_floor_to_tick(value: Decimal, tick: Decimal) -> Option<Decimal> {
    assert!(tick >= Decimal::ZERO, "tick must not be negative");
    if tick.is_zero() {
        return Some(value);
    }
    let steps = value
        .checked_div(tick)?
        .round_dp_with_strategy(0, RoundingStrategy::ToNegativeInfinity);
    let floored = steps.checked_mul(tick)?;
    // The quotient is rounded to Decimal's 28 digits before it is floored, which can carry it
    // up to the next whole step (a value a hair below a multiple, a value far smaller than the
    // tick): one tick down puts the result back below the value.
    let floored = if floored > value {
        floored.checked_sub(tick)?
    } else {
        floored
    };
    // A product beyond 28 digits is rounded by `Decimal`: refused rather than returned off tick.
    exact_multiple(floored, tick).filter(|floored| *floored <= value)
}

/// Smallest multiple of `tick` that is ≥ `value`, or `None` when it overflows `Decimal`.
pub fn checked_ceil_to_tick(value: Decimal, tick: Decimal) -> Option<Decimal> {
    assert!(tick >= Decimal::ZERO, "tick must not be negative");
    if tick.is_zero() {
        return Some(value);
    }
    let steps = value
        .checked_div(tick)?
        .round_dp_with_strategy(0, RoundingStrategy::ToPositiveInfinity);
    let ceiled = steps.checked_mul(tick)?;
    // As in `checked_floor_to_tick`: the rounded quotient can fall to the step below the value.
    let ceiled = if ceiled < value {
        ceiled.checked_add(tick)?
    } else {
        ceiled
    };
    exact_multiple(ceiled, tick).filter(|ceiled| *ceiled >= value)
}

/// `multiple`, normalized, when it is a whole multiple of `tick`.
fn exact_multiple(multiple: Decimal, tick: Decimal) -> Option<Decimal> {
    is_on_tick(multiple, tick).then(|| multiple.normalize())
}

/// True when `value` is a whole multiple of `tick`; false when the remainder overflows.
pub fn is_on_tick(value: Decimal, tick: Decimal) -> bool {
    tick.is_zero() || value.checked_rem(tick).is_some_and(|rest| rest.is_zero())
}

/// The plain decimal text sent to a venue: no exponent, no trailing zeros, no sign on zero.
pub fn plain(value: Decimal) -> String {
    let normalized = value.normalize();
    if normalized.is_zero() {
        return "0".to_string();
    }
    // Decimal's Display never uses exponent notation.
    normalized.to_string()
}

/// The quantity fillguard can protect after an entry fill: what filled, less a fee paid in the
/// asset the position holds, capped by the free balance of that asset, floored to the tick.
/// For a SELL entry the position is a short of the base asset bought back with quote, so the
/// balance cap does not apply (pass `None`). Zero when it cannot be computed
/// (`checked_protect_quantity` overflows), which `check_minimums` refuses as `ZeroQuantity`.
pub fn protect_quantity(
    filled: Decimal,
    fee_in_position_asset: Decimal,
    free_balance: Option<Decimal>,
    quantity_tick: Decimal,
) -> Decimal {
    checked_protect_quantity(filled, fee_in_position_asset, free_balance, quantity_tick)
        .unwrap_or(Decimal::ZERO)
}

/// `protect_quantity`, or `Unprotectable::Overflow` when a difference or the tick flooring
/// overflows `Decimal`.
pub fn checked_protect_quantity(
    filled: Decimal,
    fee_in_position_asset: Decimal,
    free_balance: Option<Decimal>,
    quantity_tick: Decimal,
) -> Result<Decimal, Unprotectable> {
    let mut quantity = filled
        .checked_sub(fee_in_position_asset)
        .ok_or(Unprotectable::Overflow)?;
    if let Some(free) = free_balance {
        quantity = quantity.min(free);
    }
    if quantity <= Decimal::ZERO {
        return Ok(Decimal::ZERO);
    }
    checked_floor_to_tick(quantity, quantity_tick).ok_or(Unprotectable::Overflow)
}

/// Stop-loss and take-profit prices for a position entered on `entry_side` at `entry_price`.
/// Both snap toward the entry price, so neither is looser than configured; a stop that would
/// land on the entry price is kept one tick away from it. Both zero when they cannot be
/// computed (`checked_protective_prices` overflows), which `check_minimums` refuses as
/// `NonPositivePrice`.
pub fn protective_prices(
    entry_side: Side,
    entry_price: Decimal,
    stop_loss_pct: Decimal,
    take_profit_pct: Decimal,
    price_tick: Decimal,
) -> (Decimal, Decimal) {
    checked_protective_prices(
        entry_side,
        entry_price,
        stop_loss_pct,
        take_profit_pct,
        price_tick,
    )
    .unwrap_or((Decimal::ZERO, Decimal::ZERO))
}

/// `protective_prices`, or `Unprotectable::Overflow` when a product, quotient or snap to the
/// tick overflows `Decimal`.
pub fn checked_protective_prices(
    entry_side: Side,
    entry_price: Decimal,
    stop_loss_pct: Decimal,
    take_profit_pct: Decimal,
    price_tick: Decimal,
) -> Result<(Decimal, Decimal), Unprotectable> {
    snapped_prices(
        entry_side,
        entry_price,
        percent_of(entry_price, stop_loss_pct).ok_or(Unprotectable::Overflow)?,
        percent_of(entry_price, take_profit_pct).ok_or(Unprotectable::Overflow)?,
        price_tick,
    )
    .ok_or(Unprotectable::Overflow)
}

/// `pct` % of `value`, `None` on overflow.
fn percent_of(value: Decimal, pct: Decimal) -> Option<Decimal> {
    value.checked_mul(pct)?.checked_div(ONE_HUNDRED)
}

fn snapped_prices(
    entry_side: Side,
    entry_price: Decimal,
    stop_distance: Decimal,
    profit_distance: Decimal,
    tick: Decimal,
) -> Option<(Decimal, Decimal)> {
    let floor = |value: Decimal| checked_floor_to_tick(value, tick);
    let ceil = |value: Decimal| checked_ceil_to_tick(value, tick);
    match entry_side {
        Side::Buy => {
            let stop = ceil(entry_price.checked_sub(stop_distance)?)?;
            let profit = floor(entry_price.checked_add(profit_distance)?)?;
            let below_entry = floor(entry_price)?.checked_sub(tick)?;
            let above_entry = ceil(entry_price)?.checked_add(tick)?;
            Some((stop.min(below_entry), profit.max(above_entry)))
        }
        Side::Sell => {
            let stop = floor(entry_price.checked_add(stop_distance)?)?;
            let profit = ceil(entry_price.checked_sub(profit_distance)?)?;
            let above_entry = ceil(entry_price)?.checked_add(tick)?;
            let below_entry = floor(entry_price)?.checked_sub(tick)?;
            Some((stop.max(above_entry), profit.min(below_entry)))
        }
    }
}

/// Why a position cannot be protected on this instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unprotectable {
    ZeroQuantity,
    BelowMinQuantity {
        quantity: Decimal,
        minimum: Decimal,
    },
    BelowMinNotional {
        notional: Decimal,
        minimum: Decimal,
    },
    NonPositivePrice,
    /// A product, quotient or difference of the quantity and prices overflows `Decimal`: the
    /// values are far beyond any real order.
    Overflow,
}

impl std::fmt::Display for Unprotectable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unprotectable::ZeroQuantity => f.write_str("protectable quantity is zero"),
            Unprotectable::BelowMinQuantity { quantity, minimum } => write!(
                f,
                "quantity {} is below the minimum {}",
                plain(*quantity),
                plain(*minimum)
            ),
            Unprotectable::BelowMinNotional { notional, minimum } => write!(
                f,
                "order value {} is below the minimum notional {}",
                plain(*notional),
                plain(*minimum)
            ),
            Unprotectable::NonPositivePrice => f.write_str("a protective price is not positive"),
            Unprotectable::Overflow => f.write_str(
                "decimal overflow: the quantity or a price is too large to compute with",
            ),
        }
    }
}

/// Checks that an order of `quantity` at each of `prices` meets the instrument's minimums.
pub fn check_minimums(
    instrument: &Instrument,
    quantity: Decimal,
    prices: &[Decimal],
) -> Result<(), Unprotectable> {
    if quantity <= Decimal::ZERO {
        return Err(Unprotectable::ZeroQuantity);
    }
    if quantity < instrument.min_quantity {
        return Err(Unprotectable::BelowMinQuantity {
            quantity,
            minimum: instrument.min_quantity,
        });
    }
    for price in prices {
        if *price <= Decimal::ZERO {
            return Err(Unprotectable::NonPositivePrice);
        }
        let notional = quantity
            .checked_mul(*price)
            .ok_or(Unprotectable::Overflow)?;
        if notional < instrument.min_notional {
            return Err(Unprotectable::BelowMinNotional {
                notional,
                minimum: instrument.min_notional,
            });
        }
    }
    Ok(())
}

/// True when the market has already crossed the stop: placing it would fire at once.
pub fn stop_already_crossed(entry_side: Side, stop_price: Decimal, last_price: Decimal) -> bool {
    match entry_side {
        Side::Buy => last_price <= stop_price,
        Side::Sell => last_price >= stop_price,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn floor_and_ceil_snap_to_tick() {
        assert_eq!(floor_to_tick(d("0.123456"), d("0.0001")), d("0.1234"));
        assert_eq!(
            checked_ceil_to_tick(d("0.123401"), d("0.0001")),
            Some(d("0.1235"))
        );
        assert_eq!(floor_to_tick(d("5"), d("0.5")), d("5"));
    }

    #[test]
    fn plain_never_uses_exponent_or_trailing_zeros() {
        assert_eq!(plain(d("0.00120")), "0.0012");
        assert_eq!(plain(d("1e-8")), "0.00000001");
        assert_eq!(plain(d("100.00")), "100");
        assert_eq!(plain(d("-0.0")), "0");
    }

    #[test]
    fn buy_fee_in_base_is_deducted_and_capped_by_balance() {
        let quantity = protect_quantity(d("1"), d("0.00075"), Some(d("2")), d("0.001"));
        assert_eq!(quantity, d("0.999"));
        let capped = protect_quantity(d("1"), d("0"), Some(d("0.5005")), d("0.001"));
        assert_eq!(capped, d("0.5"));
        assert_eq!(
            protect_quantity(d("0.0005"), d("0.001"), None, d("0.001")),
            d("0")
        );
    }

    #[test]
    fn protective_prices_round_toward_entry() {
        let (stop, profit) = protective_prices(Side::Buy, d("100.03"), d("1"), d("2"), d("0.1"));
        // 100.03 * 0.99 = 99.0297 -> ceil 99.1; 100.03 * 1.02 = 102.0306 -> floor 102.0
        assert_eq!((stop, profit), (d("99.1"), d("102")));
        let (stop, profit) = protective_prices(Side::Sell, d("100.03"), d("1"), d("2"), d("0.1"));
        // 101.0303 -> floor 101.0; 98.0294 -> ceil 98.1
        assert_eq!((stop, profit), (d("101"), d("98.1")));
    }

    #[test]
    fn tiny_percentages_keep_prices_one_tick_off_entry() {
        let (stop, profit) =
            protective_prices(Side::Buy, d("100"), d("0.0001"), d("0.0001"), d("1"));
        assert_eq!((stop, profit), (d("99"), d("101")));
    }

    #[test]
    fn minimum_checks_name_the_limit() {
        let instrument = Instrument {
            symbol: "X_Y".into(),
            base: "X".into(),
            quote: "Y".into(),
            price_tick: d("0.01"),
            quantity_tick: d("0.001"),
            min_quantity: d("0.01"),
            min_notional: d("5"),
            taker_fee_rate: d("0.001"),
        };
        assert!(matches!(
            check_minimums(&instrument, d("0.005"), &[d("1000")]),
            Err(Unprotectable::BelowMinQuantity { .. })
        ));
        assert!(matches!(
            check_minimums(&instrument, d("0.02"), &[d("1000"), d("100")]),
            Err(Unprotectable::BelowMinNotional { .. })
        ));
        assert_eq!(check_minimums(&instrument, d("0.02"), &[d("1000")]), Ok(()));
    }

    #[test]
    fn crossed_stop_detected_for_both_sides() {
        assert!(stop_already_crossed(Side::Buy, d("99"), d("98.9")));
        assert!(!stop_already_crossed(Side::Buy, d("99"), d("99.1")));
        assert!(stop_already_crossed(Side::Sell, d("101"), d("101")));
    }

    fn instrument(min_notional: Decimal) -> Instrument {
        Instrument {
            symbol: "X_Y".into(),
            base: "X".into(),
            quote: "Y".into(),
            price_tick: d("0.01"),
            quantity_tick: d("0.001"),
            min_quantity: d("0.001"),
            min_notional,
            taker_fee_rate: d("0.001"),
        }
    }

    /// 10^15 is the largest decimal the exchange client accepts; 10^15 × 10^15 is beyond
    /// `Decimal::MAX`, as is anything times a value near it.
    #[test]
    fn overflowing_products_are_errors_not_panics() {
        let bound = d("1000000000000000");
        let huge = Decimal::MAX;
        let cases = [
            (bound, bound),
            (huge, d("2")),
            (d("1.5"), huge),
            (huge, huge),
        ];
        for (quantity, price) in cases {
            let outcome = check_minimums(&instrument(d("5")), quantity, &[price]);
            assert_eq!(
                outcome,
                Err(Unprotectable::Overflow),
                "{quantity} × {price}"
            );
        }
        let message = Unprotectable::Overflow.to_string();
        assert!(message.contains("overflow"), "{message}");
        println!("check_minimums(10^15, [10^15]): {message}");
    }

    #[test]
    fn normalization_of_huge_values_is_an_error_or_zero_never_a_panic() {
        let huge = Decimal::MAX;
        assert_eq!(checked_floor_to_tick(huge, d("0.0001")), None);
        assert_eq!(floor_to_tick(huge, d("0.0001")), Decimal::ZERO);
        assert_eq!(checked_ceil_to_tick(huge, d("2")), None, "MAX is odd");
        assert_eq!(
            checked_protect_quantity(huge, -huge, None, d("1")),
            Err(Unprotectable::Overflow)
        );
        assert_eq!(protect_quantity(huge, -huge, None, d("1")), Decimal::ZERO);
        assert_eq!(
            checked_protective_prices(Side::Buy, huge, d("50"), d("50"), d("0.01")),
            Err(Unprotectable::Overflow)
        );
        let (stop, profit) = protective_prices(Side::Sell, huge, d("1"), d("1"), d("1"));
        assert_eq!((stop, profit), (Decimal::ZERO, Decimal::ZERO));
        assert_eq!(
            check_minimums(&instrument(d("5")), d("1"), &[stop, profit]),
            Err(Unprotectable::NonPositivePrice),
            "the zero fallback is refused by the minimum check"
        );
        let odd_at_scale_28 = Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, false, 28);
        assert!(!is_on_tick(
            odd_at_scale_28,
            d("0.0000000000000000000000000002")
        ));
    }

    /// Any 96-bit mantissa, any scale, either sign: up to `Decimal::MAX`.
    fn huge_strategy() -> impl Strategy<Value = Decimal> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28,
        )
            .prop_map(|(lo, mid, hi, negative, scale)| {
                Decimal::from_parts(lo, mid, hi, negative, scale)
            })
    }

    /// Ticks of up to six digits at any scale: 10^-28 to 999999.
    fn wide_tick_strategy() -> impl Strategy<Value = Decimal> {
        (1u32..1_000_000, 0u32..=28).prop_map(|(mantissa, scale)| {
            Decimal::from_i128_with_scale(i128::from(mantissa), scale)
        })
    }

    fn decimal_strategy() -> impl Strategy<Value = Decimal> {
        (0u64..10_000_000_000, 0u32..12).prop_map(|(mantissa, scale)| {
            Decimal::from_i128_with_scale(i128::from(mantissa), scale)
        })
    }

    fn tick_strategy() -> impl Strategy<Value = Decimal> {
        (1u64..1000, 0u32..9).prop_map(|(mantissa, scale)| {
            Decimal::from_i128_with_scale(i128::from(mantissa), scale)
        })
    }

    proptest! {
        #[test]
        fn floor_is_on_tick_below_input_within_one_tick(value in decimal_strategy(), tick in tick_strategy()) {
            let floored = floor_to_tick(value, tick);
            prop_assert!(floored <= value);
            prop_assert!(is_on_tick(floored, tick));
            prop_assert!(value - floored < tick);
        }

        #[test]
        fn protect_quantity_never_exceeds_fill_or_balance(
            filled in decimal_strategy(), fee in decimal_strategy(), free in decimal_strategy(), tick in tick_strategy()
        ) {
            let quantity = protect_quantity(filled, fee, Some(free), tick);
            prop_assert!(quantity >= Decimal::ZERO);
            prop_assert!(quantity <= filled);
            prop_assert!(quantity <= free);
            prop_assert!(is_on_tick(quantity, tick));
            let room = (filled - fee).min(free);
            if room > Decimal::ZERO {
                prop_assert!(room - quantity < tick);
            }
        }

        #[test]
        fn nonzero_result_passing_minimums_is_at_least_minimum(
            value in decimal_strategy(), tick in tick_strategy(), minimum in tick_strategy()
        ) {
            let quantity = floor_to_tick(value, tick);
            let instrument = Instrument {
                symbol: "A_B".into(), base: "A".into(), quote: "B".into(),
                price_tick: tick, quantity_tick: tick, min_quantity: minimum, min_notional: Decimal::ZERO,
                taker_fee_rate: Decimal::ZERO,
            };
            if check_minimums(&instrument, quantity, &[Decimal::ONE]).is_ok() {
                prop_assert!(quantity >= minimum);
                prop_assert!(quantity > Decimal::ZERO);
            }
        }

        #[test]
        fn huge_inputs_give_an_answer_or_an_overflow_error(
            quantity in huge_strategy(), price in huge_strategy(), tick in wide_tick_strategy(),
            pct in (1u32..5000).prop_map(|m| Decimal::from_i128_with_scale(i128::from(m), 2)),
        ) {
            if let Some(floored) = checked_floor_to_tick(quantity, tick) {
                prop_assert!(floored <= quantity && is_on_tick(floored, tick));
            }
            if let Some(ceiled) = checked_ceil_to_tick(quantity, tick) {
                prop_assert!(ceiled >= quantity && is_on_tick(ceiled, tick));
            }
            let product = quantity.abs().checked_mul(price);
            match check_minimums(&instrument(Decimal::ZERO), quantity.abs(), &[price]) {
                Err(Unprotectable::Overflow) => prop_assert!(product.is_none()),
                Ok(()) => prop_assert!(product.is_some()),
                Err(_) => {}
            }
            match checked_protect_quantity(quantity, price, Some(quantity), tick) {
                Ok(protect) => prop_assert!(protect <= quantity.max(Decimal::ZERO)),
                Err(problem) => prop_assert_eq!(problem, Unprotectable::Overflow),
            }
            for side in [Side::Buy, Side::Sell] {
                if let Ok((stop, profit)) = checked_protective_prices(side, price, pct, pct, tick) {
                    prop_assert!(is_on_tick(stop, tick) && is_on_tick(profit, tick));
                }
            }
        }

        #[test]
        fn plain_text_round_trips_without_exponent(value in decimal_strategy()) {
            let text = plain(value);
            prop_assert!(!text.contains('e') && !text.contains('E'));
            let parsed: Decimal = text.parse().unwrap();
            prop_assert_eq!(parsed, value);
        }

        #[test]
        fn protective_prices_are_on_tick_and_on_the_right_side(
            price in (1u64..10_000_000u64).prop_map(|m| Decimal::from_i128_with_scale(i128::from(m), 2)),
            stop_pct in (1u32..5000).prop_map(|m| Decimal::from_i128_with_scale(i128::from(m), 2)),
            profit_pct in (1u32..5000).prop_map(|m| Decimal::from_i128_with_scale(i128::from(m), 2)),
        ) {
            let tick = Decimal::from_i128_with_scale(1, 2);
            let (stop, profit) = protective_prices(Side::Buy, price, stop_pct, profit_pct, tick);
            prop_assert!(is_on_tick(stop, tick) && is_on_tick(profit, tick));
            prop_assert!(stop < price && profit > price);
            let stop_distance = price * stop_pct / ONE_HUNDRED;
            if stop_distance >= tick {
                prop_assert!(stop >= price - stop_distance);
            }
            let (stop, profit) = protective_prices(Side::Sell, price, stop_pct, profit_pct, tick);
            prop_assert!(stop > price && profit < price);
            if stop_distance >= tick {
                prop_assert!(stop <= price + stop_distance);
            }
        }
    }
}
