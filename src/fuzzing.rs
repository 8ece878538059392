//! Entry points for the fuzz targets in `fuzz/`: each takes arbitrary input and must not panic on
//! any of it. Besides "no panic", each checks the properties its code promises with `assert!`, so
//! a violated property is a crash the fuzzer reports like any other. Not part of the agent: no
//! caller in the crate, hidden from the documentation, never touches the network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::config::{load_from, render_masked};
use crate::core::domain::{Instrument, Side};
use crate::core::normalize::{
    Unprotectable, check_minimums, checked_ceil_to_tick, checked_floor_to_tick,
    checked_protect_quantity, checked_protective_prices, floor_to_tick, is_on_tick, plain,
    protect_quantity, protective_prices,
};
use crate::venue::cryptocom::sign::{param_string, payload, signature, verify};

mod trade_step;
pub use trade_step::trade_step;

/// The venue's answer parser, compiled here a second time from its own source: its module is
/// private to the venue, and including the file lets the fuzzer reach every parser without
/// widening the venue's API. Only the parsers are used, so some of its constants are dead here.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "venue/cryptocom/wire.rs"]
mod cryptocom_wire;
/// The history walk's types, which the answer parser names (as `super::history`).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "venue/cryptocom/history.rs"]
mod history;

use cryptocom_wire::{
    closed_candles, free_balance, history_page, instrument_row, last_price, list_id, min_notionals,
    order_ack, order_reports, parse_envelope, rows, single,
};

/// Client order id passed to the envelope parser, as a create call would.
const FUZZ_CLIENT_OID: &str = "fuzz-oid";
/// Candle timeframe and "now" handed to the candle parser (one minute, a 2023 timestamp).
const FUZZ_TIMEFRAME_MS: i64 = 60_000;
const FUZZ_NOW_MS: i64 = 1_700_000_000_000;

/// Parses one Crypto.com answer as every endpoint the venue calls would: the envelope, then the
/// order, ack, instrument, risk-parameter, ticker, candle and balance parsers on its `result`.
pub fn cryptocom_response(http_status: u16, body: &str) {
    let envelope = parse_envelope(http_status, body, Some(FUZZ_CLIENT_OID));
    let Ok(result) = envelope else {
        return;
    };
    // Only a 2xx answer whose body is an object with code 0 is a success.
    assert!(
        (200..300).contains(&http_status),
        "success on http {http_status}"
    );
    if let Ok((reports, _)) = order_reports(&result, "fuzz") {
        for report in reports {
            assert!(report.list_id.as_deref() != Some(""), "empty list id kept");
            assert!(report.reason != Some(0), "zero reason kept");
            assert!(report.price != Some(Decimal::ZERO), "zero price kept");
            assert!(
                report.trigger_price != Some(Decimal::ZERO),
                "zero trigger kept"
            );
        }
    }
    if let Ok(row) = single(&result, "fuzz") {
        let _ = cryptocom_wire::order_report(&row);
    }
    let _ = order_ack(&result, FUZZ_CLIENT_OID);
    let _ = list_id(&result);
    if let Ok(items) = rows(&result, "fuzz") {
        for item in &items {
            if let Ok(instrument) = instrument_row(item) {
                // Every instrument the parser accepts must be usable by the normalizer.
                let _ = floor_to_tick(Decimal::ONE, instrument.price_tick);
                let _ = floor_to_tick(Decimal::ONE, instrument.quantity_tick);
            }
        }
    }
    if let Ok(page) = history_page(&result, "fuzz") {
        assert!(page.reports.len() <= page.rows, "more orders than rows");
    }
    let _ = min_notionals(&result);
    let _ = last_price(&result, "BTC_USD");
    if let Ok(candles) = closed_candles(&result, FUZZ_TIMEFRAME_MS, FUZZ_NOW_MS) {
        assert!(
            candles
                .windows(2)
                .all(|pair| pair[0].open_time_ms < pair[1].open_time_ms),
            "candles not strictly ordered"
        );
    }
    let _ = free_balance(&result, "USD");
}

/// Signs a params object given as JSON text, as the client and the simulator do.
pub fn sign_params(json: &str) {
    let Ok(params) = serde_json::from_str::<Value>(json) else {
        return;
    };
    let text = param_string(&params);
    match &params {
        Value::Object(map) if map.values().all(Value::is_string) => {
            // Flat string params: keys in byte order, each followed by its value.
            let expected: String = map
                .iter()
                .map(|(key, value)| format!("{key}{}", value.as_str().unwrap_or_default()))
                .collect();
            assert_eq!(text, expected, "flat params flattened differently");
        }
        Value::Object(_) => {}
        _ => assert!(text.is_empty(), "non-object params gave {text:?}"),
    }
    let method = "private/create-order";
    let signed = payload(method, 1, "key", &params, 2);
    assert_eq!(signed, format!("{method}1key{text}2"), "payload layout");
    let sig = signature("secret", method, 1, "key", &params, 2);
    assert_eq!(sig.len(), 64, "signature length");
    assert!(
        sig.bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
        "signature not lowercase hex: {sig}"
    );
    assert!(verify(&sig, &sig), "a signature must verify against itself");
}

/// Largest magnitude of a price, quantity, fee or balance the normalize target draws (10^12): far
/// above any real order, low enough that `quantity * price` and `value / tick` fit in a `Decimal`.
const NORMALIZE_MAGNITUDE_MAX: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);
/// Ticks are drawn as `mantissa × 10^-scale` with a mantissa of at most six digits and a scale of
/// at most 12, as exchange ticks are ("0.5", "0.0001", "0.000025"): 10^-12 to 999999.
const TICK_MANTISSA_MAX: u32 = 999_999;
const TICK_SCALE_MAX: u8 = 12;
/// Most decimal places of a drawn value (`Decimal`'s own limit).
const DECIMAL_SCALE_MAX: u8 = 28;

/// Reads decimals and flags from fuzzer bytes; missing bytes read as zero.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let count = N.min(self.bytes.len());
        out[..count].copy_from_slice(&self.bytes[..count]);
        self.bytes = &self.bytes[count..];
        out
    }

    /// A signed decimal of magnitude below `NORMALIZE_MAGNITUDE_MAX`: 8 bytes of mantissa, one
    /// of scale.
    fn decimal(&mut self) -> Decimal {
        let mantissa = i64::from_le_bytes(self.take());
        let [scale] = self.take();
        let value = Decimal::from_i128_with_scale(
            i128::from(mantissa),
            u32::from(scale % (DECIMAL_SCALE_MAX + 1)),
        );
        value % NORMALIZE_MAGNITUDE_MAX
    }

    /// A signed decimal of any magnitude: 12 bytes of mantissa, one of scale.
    fn unbounded(&mut self) -> Decimal {
        let [lo, mid, hi]: [u32; 3] = [
            u32::from_le_bytes(self.take()),
            u32::from_le_bytes(self.take()),
            u32::from_le_bytes(self.take()),
        ];
        let [flags] = self.take();
        let scale = u32::from(flags >> 1) % (u32::from(DECIMAL_SCALE_MAX) + 1);
        Decimal::from_parts(lo, mid, hi, flags & 1 == 1, scale)
    }

    /// A positive tick: 4 bytes of mantissa, one of scale.
    fn tick(&mut self) -> Decimal {
        let mantissa = u32::from_le_bytes(self.take()) % TICK_MANTISSA_MAX + 1;
        let [scale] = self.take();
        Decimal::from_i128_with_scale(
            i128::from(mantissa),
            u32::from(scale % (TICK_SCALE_MAX + 1)),
        )
    }

    /// A percentage in [0, 100).
    fn percent(&mut self) -> Decimal {
        self.decimal().abs() % Decimal::ONE_HUNDRED
    }

    fn flag(&mut self) -> bool {
        let [byte] = self.take();
        byte & 1 == 1
    }
}

/// Runs the normalizer on decimals drawn from `bytes` and checks what each function promises.
pub fn normalize(bytes: &[u8]) {
    let mut reader = Reader { bytes };
    let value = reader.decimal();
    let tick = reader.tick();
    let fee = reader.decimal();
    let free = reader.decimal();
    let entry_price = reader.decimal();
    let stop_loss_pct = reader.percent();
    let take_profit_pct = reader.percent();
    let side = if reader.flag() { Side::Sell } else { Side::Buy };
    check_plain(value);
    check_ticks(value, tick);
    let quantity = check_protect_quantity(value, fee, free, tick);
    // The configuration accepts percentages in (0, 100) only.
    let percents_valid = [stop_loss_pct, take_profit_pct]
        .iter()
        .all(|pct| *pct > Decimal::ZERO);
    if entry_price > Decimal::ZERO && percents_valid {
        let (stop, profit) =
            check_protective_prices(side, entry_price, stop_loss_pct, take_profit_pct, tick);
        check_minimum_rules(quantity, tick, free, &[stop, profit]);
    }
    check_unbounded(&mut reader);
}

/// The checked functions on decimals of any magnitude (up to `Decimal::MAX`) and ticks of any
/// size: an answer or an overflow error, never a panic, and a computed answer keeps its promise.
fn check_unbounded(reader: &mut Reader<'_>) {
    let value = reader.unbounded();
    let price = reader.unbounded();
    let tick = reader.unbounded().abs();
    if let Some(floor) = checked_floor_to_tick(value, tick) {
        assert!(floor <= value, "floor {floor} above {value} (tick {tick})");
    }
    if let Some(ceil) = checked_ceil_to_tick(value, tick) {
        assert!(ceil >= value, "ceil {ceil} below {value} (tick {tick})");
    }
    let _ = is_on_tick(value, tick);
    match checked_protect_quantity(value, price, Some(value), tick) {
        Ok(quantity) => assert!(quantity <= value.max(Decimal::ZERO), "quantity above fill"),
        Err(problem) => assert_eq!(problem, Unprotectable::Overflow),
    }
    let _ = protect_quantity(value, price, None, tick);
    let percent = reader.percent();
    for side in [Side::Buy, Side::Sell] {
        let _ = checked_protective_prices(side, price, percent, percent, tick);
        let _ = protective_prices(side, price, percent, percent, tick);
    }
    check_minimum_rules(value.abs(), tick, price, &[price]);
}

fn check_plain(value: Decimal) {
    let text = plain(value);
    assert!(!text.contains(['e', 'E']), "exponent in {text}");
    assert!(
        !text.starts_with('-') || !value.is_zero(),
        "signed zero {text}"
    );
    let parsed = Decimal::from_str(&text).expect("plain text parses");
    assert_eq!(parsed, value, "plain({value}) = {text} does not round-trip");
    if text.contains('.') {
        assert!(!text.ends_with('0'), "trailing zero in {text}");
    }
}

fn check_ticks(value: Decimal, tick: Decimal) {
    let floor = floor_to_tick(value, tick);
    assert!(floor <= value, "floor {floor} above {value} (tick {tick})");
    assert!(is_on_tick(floor, tick), "floor {floor} off tick {tick}");
    // Compared without subtracting from `value`, whose 28 digits would round the difference.
    assert!(floor + tick > value, "floor {floor} of {value} a tick low");
    let ceil = checked_ceil_to_tick(value, tick).expect("bounded values do not overflow");
    assert!(ceil >= value, "ceil {ceil} below {value} (tick {tick})");
    assert!(is_on_tick(ceil, tick), "ceil {ceil} off tick {tick}");
    assert!(ceil - tick < value, "ceil {ceil} of {value} a tick high");
}

fn check_protect_quantity(filled: Decimal, fee: Decimal, free: Decimal, tick: Decimal) -> Decimal {
    let quantity = protect_quantity(filled, fee, Some(free), tick);
    assert!(quantity >= Decimal::ZERO, "negative quantity {quantity}");
    assert!(
        quantity <= free.max(Decimal::ZERO),
        "quantity above balance"
    );
    assert!(
        quantity <= (filled - fee).max(Decimal::ZERO),
        "quantity above fill"
    );
    assert!(
        is_on_tick(quantity, tick),
        "quantity {quantity} off tick {tick}"
    );
    let uncapped = protect_quantity(filled, fee, None, tick);
    assert!(quantity <= uncapped, "balance cap raised the quantity");
    quantity
}

fn check_protective_prices(
    side: Side,
    entry_price: Decimal,
    stop_loss_pct: Decimal,
    take_profit_pct: Decimal,
    tick: Decimal,
) -> (Decimal, Decimal) {
    let (stop, profit) = protective_prices(side, entry_price, stop_loss_pct, take_profit_pct, tick);
    assert!(
        is_on_tick(stop, tick) && is_on_tick(profit, tick),
        "off tick"
    );
    let stop_distance = entry_price * stop_loss_pct / Decimal::ONE_HUNDRED;
    let profit_distance = entry_price * take_profit_pct / Decimal::ONE_HUNDRED;
    let on_tick = is_on_tick(entry_price, tick);
    match side {
        Side::Buy => {
            assert!(
                stop < entry_price && profit > entry_price,
                "buy sides crossed"
            );
            // Never looser than configured, unless one tick off the entry is looser still.
            if on_tick && stop_distance >= tick {
                assert!(stop >= entry_price - stop_distance, "buy stop too loose");
            }
            if on_tick && profit_distance >= tick {
                assert!(
                    profit <= entry_price + profit_distance,
                    "buy profit too far"
                );
            }
        }
        Side::Sell => {
            assert!(
                stop > entry_price && profit < entry_price,
                "sell sides crossed"
            );
            if on_tick && stop_distance >= tick {
                assert!(stop <= entry_price + stop_distance, "sell stop too loose");
            }
            if on_tick && profit_distance >= tick {
                assert!(
                    profit >= entry_price - profit_distance,
                    "sell profit too far"
                );
            }
        }
    }
    (stop, profit)
}

fn check_minimum_rules(quantity: Decimal, tick: Decimal, minimum: Decimal, prices: &[Decimal]) {
    let instrument = Instrument {
        symbol: "A_B".to_string(),
        base: "A".to_string(),
        quote: "B".to_string(),
        price_tick: tick,
        quantity_tick: tick,
        min_quantity: minimum.abs(),
        min_notional: minimum.abs(),
        taker_fee_rate: Decimal::ZERO,
    };
    if check_minimums(&instrument, quantity, prices).is_ok() {
        assert!(quantity > Decimal::ZERO && quantity >= instrument.min_quantity);
        for price in prices {
            assert!(*price > Decimal::ZERO, "non-positive price passed");
            assert!(
                quantity
                    .checked_mul(*price)
                    .is_some_and(|notional| notional >= instrument.min_notional),
                "notional passed"
            );
        }
    }
}

/// Loads `text` as the configuration file with an empty environment: the answer is a config or
/// an error, never a panic; a loaded config renders. A file naming `venue.api_secret_file` is
/// skipped, so the fuzzer never reads files of the machine it runs on.
pub fn config_toml(text: &str) {
    if names_secret_file(text) {
        return;
    }
    let path = config_path();
    std::fs::write(&path, text).expect("the fuzz config file is writable");
    if let Ok(config) = load_from(Some(&path), &BTreeMap::new()) {
        let rendered = render_masked(&config);
        assert!(!rendered.is_empty(), "empty rendering");
    }
}

/// True when the TOML sets `venue.api_secret_file` (by the TOML parser, so quoting and escapes in
/// the key do not hide it).
fn names_secret_file(text: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    table
        .get("venue")
        .and_then(toml::Value::as_table)
        .is_some_and(|venue| venue.contains_key("api_secret_file"))
}

/// One file per process in the temporary directory, rewritten by every run.
fn config_path() -> PathBuf {
    std::env::temp_dir().join(format!("fillguard-fuzz-{}.toml", std::process::id()))
}

/// One HTTP request as the exchange simulator reads it off a connection (which then closes).
/// A request read is bounded by the limits; anything refused gets a 4xx status or a close.
pub fn sim_http_request(data: &[u8]) {
    use crate::sim::http::{BODY_BYTES_MAX, read_request};
    match read_request(&mut std::io::Cursor::new(data)) {
        Ok(request) => {
            assert!(request.body.len() <= BODY_BYTES_MAX);
            assert!(request.path.starts_with('/'), "path {:?}", request.path);
            assert!(!request.method.contains(' ') && !request.path.contains('?'));
            assert!(
                request.body.len() < data.len(),
                "the body is inside the input"
            );
        }
        Err(error) => {
            if let Some(status) = error.status {
                assert!((400..500).contains(&status), "status {status}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_answers_parse_without_panicking() {
        let text = include_str!("../tests/fixtures/cryptocom-examples.json");
        let examples: Value = serde_json::from_str(text).expect("fixture is JSON");
        let samples = examples["samples"].as_array().expect("samples");
        for sample in samples {
            let body = sample["data"]["response_sample"].to_string();
            for status in [200, 400, 429, 500] {
                cryptocom_response(status, &body);
            }
            sign_params(&sample["data"]["request_sample"]["params"].to_string());
        }
    }

    fn d(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    /// Found by the normalize target: 2.5e-27 / 1026 rounds to 0 in 28 digits, so the ceiling
    /// came out as 0, below the value.
    #[test]
    fn ceil_of_a_value_far_below_the_tick_is_one_tick() {
        let crash: [u8; 61] = [
            0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x56, 0x01, 0x04, 0x00, 0x00, 0x00,
            0x01, 0xe7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x03, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
            0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
            0x1b, 0xfe, 0xff, 0xff, 0xfe,
        ];
        normalize(&crash);
        assert_eq!(
            checked_ceil_to_tick(d("0.0000000000000000000000000025"), d("1026")),
            Some(d("1026"))
        );
    }

    /// The same rounding upward: 2.99…9 (28 nines) / 3 rounds to exactly 1 in 28 digits.
    #[test]
    fn floor_of_a_value_a_hair_below_a_multiple_stays_below_it() {
        let value = d("2.9999999999999999999999999999");
        assert_eq!(floor_to_tick(value, d("3")), Decimal::ZERO);
    }

    /// The first normalize crash was a tick of 29 digits (170.884…163008), of which no multiple
    /// is exact in a `Decimal`: ticks are now drawn the way exchanges publish them.
    #[test]
    fn drawn_ticks_have_few_digits() {
        for byte in [0x00, 0x37, 0x80, 0xff] {
            let bytes = [byte; 5];
            let tick = Reader { bytes: &bytes }.tick();
            assert!(tick > Decimal::ZERO && tick.mantissa() <= i128::from(TICK_MANTISSA_MAX));
            assert!(tick.scale() <= u32::from(TICK_SCALE_MAX));
        }
    }

    /// Found by the cryptocom_response target: a negative tick size was accepted and tripped
    /// the normalizer's `tick >= 0` assertion.
    #[test]
    fn negative_tick_sizes_are_malformed() {
        let found = concat!(
            r#"{"id":1,"melhod":"m","code":0,"result":{"data":[{"symbol":"BTC_USD","base_ccy":"BC","#,
            r#""quote_ccy":"USD","price_tick_size":"0.00","#,
            r#""qty_tick_size":"-.000000000000000000014489334587314096778"}]}}"#
        );
        cryptocom_response(200, found);
        let row = serde_json::json!({"symbol": "X_Y", "base_ccy": "X", "quote_ccy": "Y",
            "price_tick_size": "1", "qty_tick_size": "-1"});
        let error = instrument_row(&row).expect_err("a negative tick is malformed");
        assert!(
            error.to_string().contains("negative qty_tick_size"),
            "{error}"
        );
        let zero = serde_json::json!({"symbol": "X_Y", "base_ccy": "X", "quote_ccy": "Y",
            "price_tick_size": "-0", "qty_tick_size": "0"});
        assert!(instrument_row(&zero).is_ok(), "a zero tick means no tick");
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        cryptocom_response(200, "");
        cryptocom_response(500, "{\"code\": 50001}");
        sign_params("[1, {\"a\": [[[[1]]]]}]");
        normalize(&[]);
        normalize(&[0xff; 200]);
        config_toml("");
        config_toml("[[watchlist]]\nsymbol = 1");
        config_toml("[venue]\napi_secret_file = \"/dev/zero\"");
    }

    /// Random sequences the trade_step test adds to its seeds: enough to pass through every
    /// phase many times, few enough to run in a few seconds unoptimized.
    const TRADE_STEP_RANDOM_RUNS: u32 = 3_000;
    /// Longest random input: header plus about 200 events of a few bytes.
    const TRADE_STEP_RANDOM_BYTES_MAX: u64 = 1_500;

    /// The trade_step seeds reach what their names promise, and random inputs from a fixed
    /// seed keep every rule the target checks. Prints where the random runs ended.
    #[test]
    fn the_trade_step_target_reads_its_fuzz_seeds_and_random_sequences() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/trade_step");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        names.sort();
        for path in &names {
            let view = trade_step::drive(&std::fs::read(path).unwrap());
            let name = path.file_name().unwrap().to_string_lossy();
            let state = view.trade.state;
            let reason = view.trade.close_reason.as_deref().unwrap_or_default();
            println!("trade_step seed {name}: {} ({reason})", state.as_str());
            check_seed_outcome(&name, state, reason);
        }
        assert!(names.len() >= 3, "trade_step seeds: {names:?}");
        let mut random = crate::venue::paper::SplitMix64::new(0x0F11_9A4D);
        let mut ended = std::collections::BTreeMap::new();
        for _ in 0..TRADE_STEP_RANDOM_RUNS {
            let length = 11 + random.next_u64() % TRADE_STEP_RANDOM_BYTES_MAX;
            let bytes: Vec<u8> = (0..length)
                .map(|_| random.next_u64().to_le_bytes()[0])
                .collect();
            let view = trade_step::drive(&bytes);
            *ended
                .entry(format!(
                    "{} {}",
                    view.trade.state.as_str(),
                    view.trade.close_reason.clone().unwrap_or_default()
                ))
                .or_insert(0_u32) += 1;
        }
        println!("trade_step {TRADE_STEP_RANDOM_RUNS} random runs ended: {ended:?}");
    }

    /// Core finding of the trade_step target, kept as its seed: in PROTECTING a clearing lookup
    /// finds the take-profit gone (NOT_FOUND past the nonce window) and market data is fetched;
    /// an answer queued behind it then shows the leg ACTIVE, and the market answer still places
    /// a second generation beside it (S1). Fixed: a market answer with a leg live again goes back to clearing.
    #[test]
    fn a_market_answer_never_places_protection_beside_a_live_leg() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds/trade_step/finding-market-after-leg-seen-again");
        let steering = trade_step::Steering {
            market_beside_live_leg: false,
            gone_leg_found: false,
            ..trade_step::Steering::ALL
        };
        trade_step::drive_with(&std::fs::read(seed).unwrap(), steering);
    }

    /// Core finding of the trade_step target, kept as its seed: a sell trade's OCO send is
    /// ambiguous, its stop is not found past the nonce window, the failsafe sends exit X0 for the
    /// whole position; an answer queued behind it then shows the stop FILLED (position 0), and
    /// X0, not found yet, is sent again for the old quantity (S8: buys back what is not held).
    /// Fixed: an exit that no longer fits is not repeated.
    #[test]
    fn a_repeated_exit_never_exceeds_the_open_position() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds/trade_step/finding-exit-repeated-after-leg-filled");
        let steering = trade_step::Steering {
            gone_leg_found: false,
            ..trade_step::Steering::ALL
        };
        trade_step::drive_with(&std::fs::read(seed).unwrap(), steering);
    }

    /// Core finding of the trade_step target, kept as its seed: while EXITING, a late answer
    /// to the OCO send of protection (Ack) moves the trade back to VERIFYING, a second one
    /// (Duplicate) makes the stop the exit phase took as gone SENT again, and a not-found exit
    /// intent is then sent again beside that live stop (S8). Fixed: such answers are only recorded, and an exit is repeated only with no leg live.
    #[test]
    fn a_late_protection_answer_never_sends_an_exit_beside_a_live_leg() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds/trade_step/finding-late-protection-answer-during-exit");
        let steering = trade_step::Steering {
            late_protection_answer: false,
            ..trade_step::Steering::ALL
        };
        trade_step::drive_with(&std::fs::read(seed).unwrap(), steering);
    }

    fn check_seed_outcome(name: &str, state: crate::core::trade::TradeState, reason: &str) {
        use crate::core::trade::TradeState;
        if name.starts_with("protected") {
            assert_eq!(state, TradeState::Protected, "{name}");
        } else if name.starts_with("failsafe-exit") {
            assert_eq!(state, TradeState::Closed, "{name}");
            assert!(reason.starts_with("flattened after"), "{name}: {reason}");
        } else if name.starts_with("recovering") {
            assert_eq!(state, TradeState::Recovering, "{name}");
        } else if name.starts_with("corrupt") {
            assert_eq!(state, TradeState::Halted, "{name}");
            assert_eq!(reason, "inconsistent_trade", "{name}");
        }
    }

    #[test]
    fn the_simulator_reads_its_fuzz_seeds_and_refuses_chunked_bodies() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sim_http_request");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            sim_http_request(&std::fs::read(entry.unwrap().path()).unwrap());
            seen += 1;
        }
        assert!(seen >= 3);
        let chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let refused = crate::sim::http::read_request(&mut std::io::Cursor::new(&chunked[..]));
        assert_eq!(refused.unwrap_err().status, Some(411));
        let cut = b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let refused = crate::sim::http::read_request(&mut std::io::Cursor::new(&cut[..]));
        assert_eq!(
            refused.unwrap_err().status,
            None,
            "a body cut short closes the connection"
        );
    }
}
