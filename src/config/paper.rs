//! The edge between the configuration and the paper venue: `[paper]` becomes the venue's own
//! `PaperSettings`, so the venue never imports configuration types. `speed` stays behind: it
//! sets the clock the paper venue is driven by, not the venue.

use crate::venue::paper::{PaperInstrumentSettings, PaperSettings};

use super::{PaperConfig, PaperInstrument};

impl From<&PaperInstrument> for PaperInstrumentSettings {
    fn from(instrument: &PaperInstrument) -> PaperInstrumentSettings {
        PaperInstrumentSettings {
            symbol: instrument.symbol.clone(),
            base: instrument.base.clone(),
            quote: instrument.quote.clone(),
            price_tick: instrument.price_tick,
            quantity_tick: instrument.quantity_tick,
            min_quantity: instrument.min_quantity,
            min_notional: instrument.min_notional,
            start_price: instrument.start_price,
        }
    }
}

impl From<&PaperConfig> for PaperSettings {
    fn from(config: &PaperConfig) -> PaperSettings {
        PaperSettings {
            seed: config.seed,
            balances: config.balances.clone(),
            instruments: config
                .instruments
                .iter()
                .map(PaperInstrumentSettings::from)
                .collect(),
            fill_delay: config.fill_delay,
            taker_fee_rate: config.taker_fee_rate,
            step: config.step,
            volatility: config.volatility,
            candles_csv: config.candles_csv.clone(),
        }
    }
}
