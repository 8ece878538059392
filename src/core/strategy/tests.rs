//! Fixed candle series for each strategy: a buy, a sell, nothing, too few candles, the edges
//! of the RSI (only gains, only losses, flat), and the forming candle never read.

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

const MINUTE_MS: Millis = 60_000;

fn decimal(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

/// One-minute candles opened at 0, 1, 2, … minutes, each at its close.
fn candles(closes: &[Decimal]) -> Vec<Candle> {
    closes
        .iter()
        .enumerate()
        .map(|(index, close)| Candle {
            open_time_ms: index as Millis * MINUTE_MS,
            open: *close,
            high: *close,
            low: *close,
            close: *close,
        })
        .collect()
}

fn whole(closes: &[i64]) -> Vec<Decimal> {
    closes.iter().map(|close| Decimal::from(*close)).collect()
}

/// The rule on these closes, every candle closed (now is the newest one's close time).
fn on_closed(rule: &Rule, closes: &[Decimal]) -> Verdict {
    let series = candles(closes);
    let now_ms = closes.len() as Millis * MINUTE_MS;
    evaluate(rule, &series, MINUTE_MS, now_ms)
}

fn side(verdict: Verdict) -> Option<Side> {
    match verdict {
        Verdict::Signal { side, .. } => Some(side),
        Verdict::Hold { .. } | Verdict::TooFew => None,
    }
}

/// `count` closes from `start`, each `step` from the one before.
fn ramp(start: i64, step: i64, count: usize) -> Vec<Decimal> {
    (0..count as i64)
        .map(|index| Decimal::from(start + step * index))
        .collect()
}

const SMA: Rule = Rule::SmaCross { fast: 2, slow: 4 };

fn rsi(period: usize) -> Rule {
    Rule::Rsi {
        period,
        oversold: Decimal::from(30),
        overbought: Decimal::from(70),
    }
}

fn breakout(above: Option<&str>, below: Option<&str>) -> Rule {
    Rule::Breakout {
        above: above.map(decimal),
        below: below.map(decimal),
    }
}

/// Each rule with a series whose closed candles give no signal but whose last candle, still
/// forming, would: the verdict must be Hold on the newest closed candle. Once that candle has
/// closed (now at its close time) the same series signals, which proves the series is one
/// where reading the forming candle would have traded.
#[test]
fn the_forming_candle_never_gives_a_signal() {
    let mut falling = ramp(200, -1, rsi(3).candles_needed());
    falling.push(Decimal::from(260));
    let cases = [
        (SMA, whole(&[10, 10, 10, 10, 10, 20]), Side::Buy),
        (rsi(3), falling, Side::Buy),
        (
            breakout(Some("110"), None),
            whole(&[100, 100, 120]),
            Side::Buy,
        ),
        (
            breakout(None, Some("90")),
            whole(&[100, 100, 80]),
            Side::Sell,
        ),
    ];
    for (rule, closes, side) in cases {
        let series = candles(&closes);
        let forming = series.last().expect("a forming candle").open_time_ms;
        let newest_closed = forming - MINUTE_MS;
        // One millisecond before the forming candle closes, and the moment it opened.
        for now_ms in [forming + MINUTE_MS - 1, forming] {
            assert_eq!(
                evaluate(&rule, &series, MINUTE_MS, now_ms),
                Verdict::Hold {
                    candle_open_time_ms: newest_closed
                },
                "{rule:?} read the forming candle at {now_ms}"
            );
        }
        assert_eq!(
            evaluate(&rule, &series, MINUTE_MS, forming + MINUTE_MS),
            Verdict::Signal {
                side,
                candle_open_time_ms: forming
            },
            "{rule:?} once the candle has closed"
        );
    }
}

#[test]
fn closed_candles_drop_the_forming_the_repeated_and_the_out_of_order() {
    let mut series = candles(&whole(&[1, 2, 3, 4]));
    series.insert(2, series[1].clone());
    series.push(series[0].clone());
    let closed = closed_candles(&series, MINUTE_MS, 3 * MINUTE_MS + 59_999);
    let times: Vec<Millis> = closed.iter().map(|candle| candle.open_time_ms).collect();
    assert_eq!(times, [0, MINUTE_MS, 2 * MINUTE_MS]);
    assert!(closed_candles(&series, 0, Millis::MAX).is_empty());
    assert!(closed_candles(&series, -MINUTE_MS, Millis::MAX).is_empty());
    let mut far = candles(&whole(&[1]));
    far[0].open_time_ms = Millis::MAX - 1;
    assert!(closed_candles(&far, MINUTE_MS, Millis::MAX).is_empty());
}

#[test]
fn sma_golden_cross_buys_and_death_cross_sells() {
    assert_eq!(on_closed(&SMA, &whole(&[10, 10, 10, 9, 8, 12])), {
        Verdict::Signal {
            side: Side::Buy,
            candle_open_time_ms: 5 * MINUTE_MS,
        }
    });
    assert_eq!(
        side(on_closed(&SMA, &whole(&[10, 10, 10, 11, 12, 8]))),
        Some(Side::Sell)
    );
    assert_eq!(
        on_closed(&SMA, &whole(&[10, 11, 12, 13, 14, 15])),
        Verdict::Hold {
            candle_open_time_ms: 5 * MINUTE_MS
        }
    );
}

#[test]
fn sma_with_too_few_candles_or_a_refused_rule_gives_nothing() {
    assert_eq!(on_closed(&SMA, &whole(&[10, 10, 9, 12])), Verdict::TooFew);
    assert_eq!(on_closed(&SMA, &[]), Verdict::TooFew);
    let golden = whole(&[10, 10, 10, 9, 8, 12]);
    for rule in [
        Rule::SmaCross { fast: 4, slow: 4 },
        Rule::SmaCross { fast: 5, slow: 4 },
        Rule::SmaCross { fast: 0, slow: 4 },
    ] {
        assert_eq!(side(on_closed(&rule, &golden)), None, "{rule:?}");
    }
}

#[test]
fn a_longer_series_gives_the_same_verdict() {
    let golden = whole(&[10, 10, 10, 9, 8, 12]);
    let mut longer = whole(&[50, 1, 70, 3]);
    longer.extend_from_slice(&golden);
    let verdict = on_closed(&SMA, &longer);
    assert_eq!(side(verdict), Some(Side::Buy));
    let mut rising = ramp(1, 3, 40);
    rising.extend(ramp(200, -1, rsi(3).candles_needed()));
    rising.push(Decimal::from(260));
    assert_eq!(side(on_closed(&rsi(3), &rising)), Some(Side::Buy));
}

/// The worked example StockCharts publishes for Wilder's RSI (14 periods): the closes, and
/// the RSI on each close from the fifteenth on, rounded to two places.
#[test]
fn rsi_matches_the_published_worked_example() {
    let closes: Vec<Decimal> = [
        "44.3389", "44.0902", "44.1497", "43.6124", "44.2778", "44.8264", "45.0955", "45.4245",
        "45.8433", "46.0826", "45.8931", "46.0328", "45.614", "46.282", "46.282", "46.0028",
        "46.0328", "46.4116", "46.2222", "45.6439", "46.2122", "46.2521", "45.7137", "46.4515",
        "45.7835", "45.3548", "44.0288", "44.1783", "44.2181", "44.5672", "43.4205", "42.6628",
        "43.1314",
    ]
    .iter()
    .map(|text| decimal(text))
    .collect();
    let published = [
        "66.32", "66.55", "69.41", "66.36", "57.97", "62.93", "63.26", "56.06", "62.38", "54.71",
        "50.42", "39.99", "41.46", "41.87", "45.46", "37.30", "33.08", "37.77",
    ];
    // The first value (70.53, on the fifteenth close) is the one before the second.
    let (first, second) = rsi::last_two(&closes[..16], 14).expect("enough closes");
    assert_eq!(first.round_dp(2), decimal("70.53"));
    assert_eq!(second.round_dp(2), decimal("66.32"));
    for (offset, expected) in published.iter().enumerate() {
        let value = rsi::value(&closes[..16 + offset], 14).expect("enough closes");
        assert_eq!(
            value.round_dp(2),
            decimal(expected),
            "close {}",
            16 + offset
        );
    }
    assert_eq!(rsi::value(&closes[..15], 14), None, "one close short");
}

#[test]
fn rsi_leaving_the_oversold_zone_buys_and_leaving_overbought_sells() {
    let needed = rsi(3).candles_needed();
    // Only losses: RSI 0 (no gain at all), then one strong rise.
    let mut falling = ramp(200, -1, needed - 1);
    falling.push(Decimal::from(260));
    assert_eq!(side(on_closed(&rsi(3), &falling)), Some(Side::Buy));
    // Only gains: RSI 100 (the average loss is zero), then one strong fall.
    let mut rising = ramp(100, 1, needed - 1);
    rising.push(Decimal::from(50));
    assert_eq!(side(on_closed(&rsi(3), &rising)), Some(Side::Sell));
}

#[test]
fn rsi_gives_nothing_at_its_edges_or_inside_the_zones() {
    let needed = rsi(3).candles_needed();
    // Average loss zero (RSI 100 throughout), average gain zero (RSI 0 throughout), and both
    // zero (flat: neutral 50): no crossing, no panic.
    for closes in [
        ramp(100, 1, needed),
        ramp(200, -1, needed),
        ramp(100, 0, needed),
    ] {
        assert!(
            matches!(on_closed(&rsi(3), &closes), Verdict::Hold { .. }),
            "{closes:?}"
        );
    }
    assert_eq!(rsi::value(&ramp(100, 1, 5), 3), Some(Decimal::ONE_HUNDRED));
    assert_eq!(rsi::value(&ramp(100, -1, 5), 3), Some(Decimal::ZERO));
    assert_eq!(rsi::value(&ramp(100, 0, 5), 3), Some(Decimal::from(50)));
    // Flat, then a rise: 50 to 100 crosses neither level the way a signal needs.
    let mut flat_then_up = ramp(100, 0, needed - 1);
    flat_then_up.push(Decimal::from(120));
    assert_eq!(side(on_closed(&rsi(3), &flat_then_up)), None);
    // Still oversold after the rise: RSI 0 to below 30 is no crossing.
    let mut small_rise = ramp(200, -10, needed - 1);
    small_rise.push(Decimal::from(200 - 10 * (needed as i64 - 2) + 1));
    assert_eq!(side(on_closed(&rsi(3), &small_rise)), None);
}

#[test]
fn rsi_with_too_few_candles_gives_nothing() {
    let needed = rsi(14).candles_needed();
    assert_eq!(needed, 14 * RSI_HISTORY_PERIODS + 2);
    let mut falling = ramp(500, -1, needed - 2);
    falling.push(Decimal::from(600));
    assert_eq!(on_closed(&rsi(14), &falling), Verdict::TooFew);
    assert_eq!(rsi(200).candles_needed(), CANDLES_MAX);
    let zero = Rule::Rsi {
        period: 0,
        oversold: Decimal::from(30),
        overbought: Decimal::from(70),
    };
    assert_eq!(side(on_closed(&zero, &whole(&[1, 2, 3, 1]))), None);
}

#[test]
fn breakout_crossing_a_level_signals_once() {
    let both = breakout(Some("110"), Some("90"));
    assert_eq!(side(on_closed(&both, &whole(&[100, 111]))), Some(Side::Buy));
    assert_eq!(
        side(on_closed(&both, &whole(&[110, 111]))),
        Some(Side::Buy),
        "a close at the level, then above it"
    );
    assert_eq!(side(on_closed(&both, &whole(&[100, 89]))), Some(Side::Sell));
    assert_eq!(
        side(on_closed(&both, &whole(&[90, 89]))),
        Some(Side::Sell),
        "a close at the level, then below it"
    );
    for closes in [[111, 120], [100, 110], [89, 80], [100, 90], [95, 105]] {
        assert_eq!(side(on_closed(&both, &whole(&closes))), None, "{closes:?}");
    }
}

#[test]
fn breakout_with_one_level_ignores_the_other_side() {
    let above = breakout(Some("110"), None);
    assert_eq!(side(on_closed(&above, &whole(&[100, 50]))), None);
    assert_eq!(
        side(on_closed(&above, &whole(&[100, 120]))),
        Some(Side::Buy)
    );
    let below = breakout(None, Some("90"));
    assert_eq!(side(on_closed(&below, &whole(&[100, 120]))), None);
    assert_eq!(
        side(on_closed(&below, &whole(&[100, 50]))),
        Some(Side::Sell)
    );
    assert_eq!(
        side(on_closed(&breakout(None, None), &whole(&[100, 50]))),
        None
    );
    assert_eq!(on_closed(&above, &whole(&[120])), Verdict::TooFew);
}

#[test]
fn overflowing_closes_give_no_signal() {
    let huge = [
        Decimal::MAX,
        Decimal::MAX,
        Decimal::MIN,
        Decimal::MAX,
        Decimal::MAX,
    ];
    assert_eq!(side(on_closed(&SMA, &huge)), None);
    let mut extremes = vec![Decimal::MAX; rsi(3).candles_needed()];
    extremes[3] = Decimal::MIN;
    assert_eq!(side(on_closed(&rsi(3), &extremes)), None);
}

fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (any::<i64>(), 0u32..=28).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale)),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
        Just(Decimal::ZERO),
    ]
}

fn any_rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (0usize..8, 0usize..8).prop_map(|(fast, slow)| Rule::SmaCross { fast, slow }),
        (0usize..6, any_decimal(), any_decimal()).prop_map(|(period, oversold, overbought)| {
            Rule::Rsi {
                period,
                oversold,
                overbought,
            }
        }),
        (
            proptest::option::of(any_decimal()),
            proptest::option::of(any_decimal())
        )
            .prop_map(|(above, below)| Rule::Breakout { above, below }),
    ]
}

proptest! {
    /// No rule panics on any candle data, and a signal is always on a closed candle.
    #[test]
    fn no_input_panics_and_a_signal_is_on_a_closed_candle(
        rule in any_rule(),
        rows in proptest::collection::vec((any::<i64>(), any_decimal()), 0..40),
        timeframe_ms in prop_oneof![Just(MINUTE_MS), any::<i64>()],
        now_ms in any::<i64>(),
    ) {
        let series: Vec<Candle> = rows
            .iter()
            .map(|(open_time_ms, close)| Candle {
                open_time_ms: *open_time_ms,
                open: *close,
                high: *close,
                low: *close,
                close: *close,
            })
            .collect();
        if let Verdict::Signal { candle_open_time_ms, .. } | Verdict::Hold { candle_open_time_ms } =
            evaluate(&rule, &series, timeframe_ms, now_ms)
        {
            prop_assert!(timeframe_ms > 0);
            prop_assert!(candle_open_time_ms.checked_add(timeframe_ms).is_some_and(|close| close <= now_ms));
        }
    }

    /// On a contiguous series the verdict is always on the newest candle closed by `now_ms`.
    #[test]
    fn a_contiguous_series_is_decided_on_its_newest_closed_candle(
        rule in any_rule(),
        closes in proptest::collection::vec(any_decimal(), 0..40),
        now_ms in 0i64..50 * MINUTE_MS,
    ) {
        let series = candles(&closes);
        let closed = series
            .iter()
            .filter(|candle| candle.open_time_ms + MINUTE_MS <= now_ms)
            .count();
        match evaluate(&rule, &series, MINUTE_MS, now_ms) {
            Verdict::TooFew => prop_assert!(closed < rule.candles_needed() || closed == 0),
            Verdict::Hold { candle_open_time_ms } | Verdict::Signal { candle_open_time_ms, .. } => {
                prop_assert!(closed >= rule.candles_needed());
                prop_assert_eq!(candle_open_time_ms, (closed as Millis - 1) * MINUTE_MS);
            }
        }
    }
}
