//! The fill-delay distribution of `fillguard sim-exchange --fill-delay`: how long after its
//! acceptance each MARKET order (a plain entry or an OTOCO's entry) fills, drawn once per order
//! from a seeded stream, so that a benchmark sees a realistic mix of immediate and late fills and
//! the same seed and request sequence give the same delays. No IO, no clock, no global state.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::faults::{SplitMix64, WINDOW_MS_MAX};

/// Most items one distribution may list.
pub const ITEMS_MAX: usize = 16;
/// Mixed into `--seed` for the delay stream, so the fault stream and the delay stream differ.
pub const STREAM_SALT: u64 = 0x6669_6c6c_6465_6c61;

const _: () = assert!(ITEMS_MAX >= 1);

/// Documents the `--fill-delay` syntax (shown by `fillguard sim-exchange --help`).
pub const FILL_DELAY_HELP: &str = "\
How long after acceptance each MARKET order (a plain entry or an OTOCO's entry) fills, in
engine milliseconds, drawn once per order: comma-separated SHARE:MS or SHARE:LOW..HIGH items
whose shares add up to exactly 1, e.g. \"0.5:0,0.5:50..500\" (half fill at once, half uniformly
50 to 500 ms later). A range is inclusive. Drawn from a splitmix64 stream seeded by --seed
(apart from the fault stream), so the same seed and the same request sequence give the same
delays. Replaces paper.fill_delay_ms; not combinable with the fill_delay fault. LIMIT orders
fill when the price crosses them and triggers when they fire, whatever this says.";

/// One item: with probability `share`, a delay uniform in `low_ms..=high_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    share: Decimal,
    low_ms: u64,
    high_ms: u64,
}

/// A discrete mixture of uniform delays; the shares add up to 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillDelay {
    items: Vec<Item>,
}

impl FillDelay {
    /// One delay, consuming exactly two numbers of `stream` whatever the items are.
    pub fn draw(&self, stream: &mut SplitMix64) -> u64 {
        let pick = stream.next_unit();
        let offset = stream.next_u64();
        let mut cumulative = Decimal::ZERO;
        let last = self.items.len() - 1;
        let chosen = self
            .items
            .iter()
            .enumerate()
            .find(|(index, item)| {
                cumulative += item.share;
                pick < cumulative || *index == last
            })
            .map(|(_, item)| *item)
            .expect("a distribution has at least one item");
        let width = chosen.high_ms - chosen.low_ms + 1;
        chosen.low_ms + offset % width
    }
}

impl FromStr for FillDelay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty distribution (expected SHARE:MS or SHARE:LOW..HIGH items)".into());
        }
        let mut items = Vec::new();
        for item in text.split(',').map(str::trim) {
            if items.len() == ITEMS_MAX {
                return Err(format!("more than {ITEMS_MAX} items"));
            }
            items.push(parse_item(item).map_err(|problem| format!("item {item:?}: {problem}"))?);
        }
        let total: Decimal = items.iter().map(|item| item.share).sum();
        if total != Decimal::ONE {
            return Err(format!("the shares add up to {total}, not 1"));
        }
        Ok(FillDelay { items })
    }
}

fn parse_item(item: &str) -> Result<Item, String> {
    let Some((share, delay)) = item.split_once(':') else {
        return Err("expected SHARE:MS or SHARE:LOW..HIGH".into());
    };
    let share = Decimal::from_str_exact(share.trim())
        .map_err(|_| format!("share {:?} is not a decimal", share.trim()))?;
    if share <= Decimal::ZERO || share > Decimal::ONE {
        return Err(format!("share {share} is not in (0, 1]"));
    }
    let (low_ms, high_ms) = match delay.split_once("..") {
        Some((low, high)) => (parse_ms(low)?, parse_ms(high)?),
        None => {
            let delay_ms = parse_ms(delay)?;
            (delay_ms, delay_ms)
        }
    };
    if low_ms > high_ms {
        return Err(format!("range {low_ms}..{high_ms} is empty"));
    }
    Ok(Item {
        share,
        low_ms,
        high_ms,
    })
}

fn parse_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of milliseconds"))?;
    if parsed > WINDOW_MS_MAX {
        return Err(format!(
            "{parsed} ms is above the maximum of {WINDOW_MS_MAX} ms"
        ));
    }
    Ok(parsed)
}

impl fmt::Display for FillDelay {
    /// The distribution in `--fill-delay` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| {
                if item.low_ms == item.high_ms {
                    format!("{}:{}", item.share, item.low_ms)
                } else {
                    format!("{}:{}..{}", item.share, item.low_ms, item.high_ms)
                }
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let delay: FillDelay = "0.5:0, 0.5:50..500".parse().expect("valid");
        assert_eq!(delay.to_string(), "0.5:0,0.5:50..500");
        assert_eq!(delay.to_string().parse::<FillDelay>(), Ok(delay));
        assert!("1:250".parse::<FillDelay>().is_ok());
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            ("", "empty"),
            ("0.5:0", "add up to 0.5"),
            ("0.5:0,0.6:10", "add up to 1.1"),
            ("1", "SHARE:MS"),
            ("x:10", "share \"x\""),
            ("0:10,1:5", "not in (0, 1]"),
            ("1:500..50", "empty"),
            ("1:-5", "\"-5\""),
            ("1:700000", "above the maximum"),
            ("1:1..z", "\"z\""),
        ];
        for (text, needle) in cases {
            let error = text.parse::<FillDelay>().expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn draws_follow_the_shares_and_the_seed() {
        let delay: FillDelay = "0.5:0,0.5:50..500".parse().expect("valid");
        let draws = |seed| {
            let mut stream = SplitMix64::new(seed);
            (0..2_000)
                .map(|_| delay.draw(&mut stream))
                .collect::<Vec<_>>()
        };
        let first = draws(3);
        assert_eq!(first, draws(3));
        assert_ne!(first, draws(4));
        let immediate = first.iter().filter(|delay_ms| **delay_ms == 0).count();
        assert!((900..1_100).contains(&immediate), "{immediate}");
        let late: Vec<u64> = first.iter().copied().filter(|ms| *ms != 0).collect();
        assert!(late.iter().all(|ms| (50..=500).contains(ms)));
        assert!(late.iter().any(|ms| *ms < 100) && late.iter().any(|ms| *ms > 450));
    }
}
