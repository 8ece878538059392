//! Fault injection for the HTTP simulator: the `FaultSpec` parsed from `--faults` and the
//! seeded stream that decides, request by request, which probabilistic fault strikes. The same
//! seed and the same request sequence give the same faults. No IO, no clock, no global state.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Longest added response delay `latency=MS` accepts.
pub const LATENCY_MS_MAX: u64 = 5_000;
/// Longest `notfound=MS` and `fill_delay=MS` windows.
pub const WINDOW_MS_MAX: u64 = 600_000;

/// Documents the `--faults` syntax (shown by `fillguard sim-exchange --help`).
pub const FAULTS_HELP: &str = "\
Fault injection: comma-separated name=value items, e.g. \"lost=0.05,latency=200,partial=0.5\";
\"none\" or an empty string turns every fault off. Probabilities P are in 0..=1 and are drawn
from a splitmix64 stream seeded by --seed: four draws per /exchange/v1/ request, so the same
seed and the same request sequence give the same faults. Times are engine milliseconds
(the engine runs --speed times faster than the wall clock), except latency (wall clock).
  latency=MS            round-trip latency: every exchange request is applied when it
                        arrives and answered MS (0..=5000) wall-clock ms later
  lost=P                a create or cancel is applied to the engine, then the connection is
                        closed without a response (the client cannot tell whether it worked)
  error5xx=P            answer HTTP 503 with code 50001 without applying the request
  ratelimit=P           answer HTTP 429 with code 42901 without applying the request
  malformed=P           replace the body of a successful read-only response (public methods,
                        get-*, user-balance) by truncated JSON
  notfound=MS           order-detail, open-orders and history do not show an order until MS
                        after its creation (detail answers 40401)
  partial=FRACTION      MARKET and LIMIT entries fill only FRACTION (0 < FRACTION < 1) of their
                        quantity; the rest EXPIRES
  fill_delay=MS         MARKET orders fill MS after acceptance (replaces paper.fill_delay_ms)
  reject_protective=CODE
                        every STOP_LOSS / TAKE_PROFIT order, OCO and OTOCO is rejected with CODE
Faults apply only to authenticated /exchange/v1/ requests, never to the /sim/ test hooks.";

/// A probability in 0..=1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Probability(f64);

impl Probability {
    pub fn new(value: f64) -> Option<Probability> {
        (0.0..=1.0).contains(&value).then_some(Probability(value))
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// Whether a uniform 64-bit `draw` falls under this probability.
    pub fn hits(self, draw: u64) -> bool {
        if self.0 <= 0.0 {
            return false;
        }
        if self.0 >= 1.0 {
            return true;
        }
        // 2^64 as f64 is exact; the product is below it, so the cast does not saturate.
        let threshold = (self.0 * 18_446_744_073_709_551_616.0) as u64;
        draw < threshold
    }
}

/// Which faults are on and how strongly. The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub latency_ms: u64,
    pub lost: Probability,
    pub error5xx: Probability,
    pub ratelimit: Probability,
    pub malformed: Probability,
    pub notfound_ms: u64,
    /// Fill fraction of entries, strictly between 0 and 1.
    pub partial: Option<Decimal>,
    pub fill_delay_ms: Option<u64>,
    pub reject_protective: Option<i64>,
}

impl FaultSpec {
    pub fn is_none(&self) -> bool {
        *self == FaultSpec::default()
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let mut spec = FaultSpec::default();
        if text.is_empty() || text == "none" {
            return Ok(spec);
        }
        let mut seen: Vec<&str> = Vec::new();
        for item in text.split(',').map(str::trim) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("fault item {item:?}: expected name=value"));
            };
            let (name, value) = (name.trim(), value.trim());
            if seen.contains(&name) {
                return Err(format!("fault item {item:?}: {name} is given twice"));
            }
            seen.push(name);
            apply_item(&mut spec, name, value)
                .map_err(|problem| format!("fault item {item:?}: {problem}"))?;
        }
        Ok(spec)
    }
}

fn apply_item(spec: &mut FaultSpec, name: &str, value: &str) -> Result<(), String> {
    match name {
        "latency" => spec.latency_ms = parse_ms(value, LATENCY_MS_MAX)?,
        "lost" => spec.lost = parse_probability(value)?,
        "error5xx" => spec.error5xx = parse_probability(value)?,
        "ratelimit" => spec.ratelimit = parse_probability(value)?,
        "malformed" => spec.malformed = parse_probability(value)?,
        "notfound" => spec.notfound_ms = parse_ms(value, WINDOW_MS_MAX)?,
        "partial" => spec.partial = Some(parse_fraction(value)?),
        "fill_delay" => spec.fill_delay_ms = Some(parse_ms(value, WINDOW_MS_MAX)?),
        "reject_protective" => spec.reject_protective = Some(parse_code(value)?),
        _ => {
            return Err(format!(
                "unknown fault {name:?} (expected latency, lost, error5xx, ratelimit, \
                 malformed, notfound, partial, fill_delay or reject_protective)"
            ));
        }
    }
    Ok(())
}

fn parse_ms(value: &str, maximum: u64) -> Result<u64, String> {
    let parsed: u64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number of milliseconds"))?;
    if parsed > maximum {
        return Err(format!("{parsed} ms is above the maximum of {maximum} ms"));
    }
    Ok(parsed)
}

fn parse_probability(value: &str) -> Result<Probability, String> {
    let parsed: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    Probability::new(parsed).ok_or_else(|| format!("probability {value} is not in 0..=1"))
}

fn parse_fraction(value: &str) -> Result<Decimal, String> {
    let parsed =
        Decimal::from_str_exact(value).map_err(|_| format!("{value:?} is not a decimal"))?;
    if parsed <= Decimal::ZERO || parsed >= Decimal::ONE {
        return Err(format!("fraction {value} must be strictly between 0 and 1"));
    }
    Ok(parsed)
}

fn parse_code(value: &str) -> Result<i64, String> {
    match value.parse::<i64>() {
        Ok(code) if code > 0 => Ok(code),
        _ => Err(format!("{value:?} is not a positive error code")),
    }
}

impl fmt::Display for FaultSpec {
    /// The spec in `--faults` syntax, so a run can print the command that replays it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        if self.latency_ms > 0 {
            items.push(format!("latency={}", self.latency_ms));
        }
        let probabilities = [
            ("lost", self.lost),
            ("error5xx", self.error5xx),
            ("ratelimit", self.ratelimit),
            ("malformed", self.malformed),
        ];
        for (name, probability) in probabilities {
            if probability.value() > 0.0 {
                items.push(format!("{name}={}", probability.value()));
            }
        }
        if self.notfound_ms > 0 {
            items.push(format!("notfound={}", self.notfound_ms));
        }
        if let Some(partial) = self.partial {
            items.push(format!("partial={partial}"));
        }
        if let Some(delay_ms) = self.fill_delay_ms {
            items.push(format!("fill_delay={delay_ms}"));
        }
        if let Some(code) = self.reject_protective {
            items.push(format!("reject_protective={code}"));
        }
        if items.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&items.join(","))
    }
}

/// The same fully specified generator as the paper engine's price paths, so a seed means the
/// same stream on every platform and in every version.
pub use crate::venue::paper::SplitMix64;

/// The probabilistic faults decided for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultDraw {
    pub error5xx: bool,
    pub ratelimit: bool,
    pub lost: bool,
    pub malformed: bool,
}

/// Draws exactly four numbers per request, whichever faults are on, so that enabling one fault
/// does not shift the draws of another.
pub fn draw(spec: &FaultSpec, stream: &mut SplitMix64) -> FaultDraw {
    FaultDraw {
        error5xx: spec.error5xx.hits(stream.next_u64()),
        ratelimit: spec.ratelimit.hits(stream.next_u64()),
        lost: spec.lost.hits(stream.next_u64()),
        malformed: spec.malformed.hits(stream.next_u64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_item() {
        let text = "latency=20,lost=0.1,error5xx=0.2,ratelimit=0.3,malformed=1,notfound=500,\
                    partial=0.4,fill_delay=250,reject_protective=306";
        let spec: FaultSpec = text.parse().expect("valid");
        assert_eq!(spec.latency_ms, 20);
        assert_eq!(spec.lost.value(), 0.1);
        assert_eq!(spec.malformed.value(), 1.0);
        assert_eq!(spec.notfound_ms, 500);
        assert_eq!(spec.partial, Some(Decimal::from_str_exact("0.4").unwrap()));
        assert_eq!(spec.fill_delay_ms, Some(250));
        assert_eq!(spec.reject_protective, Some(306));
        assert_eq!(spec.to_string().parse::<FaultSpec>(), Ok(spec));
        assert!("none".parse::<FaultSpec>().unwrap().is_none());
        assert!("".parse::<FaultSpec>().unwrap().is_none());
        assert_eq!(FaultSpec::default().to_string(), "none");
    }

    #[test]
    fn errors_name_the_bad_item() {
        let cases = [
            ("lost=2", "lost=2"),
            ("lost=0.1,bogus=1", "bogus"),
            ("latency=9999", "latency=9999"),
            ("partial=1", "partial=1"),
            ("partial=0", "partial=0"),
            ("error5xx", "error5xx"),
            ("notfound=-1", "notfound=-1"),
            ("reject_protective=abc", "reject_protective=abc"),
            ("lost=0.1,lost=0.2", "given twice"),
        ];
        for (text, needle) in cases {
            let error = text.parse::<FaultSpec>().expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn probability_edges() {
        let never = Probability::new(0.0).unwrap();
        let always = Probability::new(1.0).unwrap();
        let half = Probability::new(0.5).unwrap();
        assert!(!never.hits(0));
        assert!(always.hits(u64::MAX));
        assert!(half.hits(u64::MAX / 2 - 1));
        assert!(!half.hits(u64::MAX / 2 + 2));
        assert!(Probability::new(1.5).is_none());
        assert!(Probability::new(f64::NAN).is_none());
    }

    #[test]
    fn same_seed_same_draws() {
        let spec: FaultSpec = "lost=0.5,error5xx=0.5".parse().unwrap();
        let sequence = |seed| {
            let mut stream = SplitMix64::new(seed);
            (0..64)
                .map(|_| draw(&spec, &mut stream))
                .collect::<Vec<_>>()
        };
        assert_eq!(sequence(7), sequence(7));
        assert_ne!(sequence(7), sequence(8));
        let hits = sequence(7).iter().filter(|faults| faults.lost).count();
        assert!((16..48).contains(&hits), "{hits}");
        // Reference values of splitmix64 seeded with 0.
        let mut stream = SplitMix64::new(0);
        assert_eq!(stream.next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
