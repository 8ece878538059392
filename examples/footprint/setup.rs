//! The configuration of one measured run: a paper account with N instruments, a watchlist of
//! the same N symbols trading `sma_cross`, a fresh database in its own directory, and the
//! metrics endpoint on a loopback port. Writes files only; starts nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What one run is given.
pub struct RunSetup {
    /// Watchlist symbols, each with its own paper instrument.
    pub symbols: usize,
    /// `paper.speed`: paper seconds per wall second.
    pub speed: u32,
    /// `metrics.listen`, or `None` for `off`.
    pub metrics_port: Option<u16>,
    /// Each symbol's strategy: `sma_cross` trades, `none` only watches.
    pub strategy: &'static str,
    /// Trade through the Crypto.com client against `fillguard sim-exchange` on this loopback
    /// port (key `demo`, the secret in `dir/sim-secret`) instead of the in-process paper venue.
    pub simulator_port: Option<u16>,
}

/// The symbol of the `index`-th instrument; the base asset is the part before `_`.
fn symbol(index: usize) -> String {
    format!("X{index:04}_USDT")
}

/// The TOML text of a run's configuration.
pub fn config_text(setup: &RunSetup, dir: &Path) -> String {
    let mut text = String::new();
    let db = dir.join("fillguard.db");
    let listen = setup
        .metrics_port
        .map_or("off".to_string(), |port| format!("127.0.0.1:{port}"));
    // `write!` into a String cannot fail.
    let _ = writeln!(text, "[store]\npath = {:?}\n", db.display().to_string());
    let _ = writeln!(text, "[metrics]\nlisten = {listen:?}\n");
    let _ = writeln!(text, "[paper]\nspeed = {}\n", setup.speed);
    if let Some(port) = setup.simulator_port {
        let secret = dir.join("sim-secret");
        let _ = writeln!(
            text,
            "[venue]\nkind = \"cryptocom\"\nbase_url = \"http://127.0.0.1:{port}/exchange/v1\"\n\
             api_key = \"demo\"\napi_secret_file = {:?}\n",
            secret.display().to_string()
        );
    }
    // Quote only: the watchlist buys (a sell entry would need every base asset, and the
    // account holds at most 1,000 assets).
    let _ = writeln!(text, "[paper.balances]\nUSDT = \"100000000\"\n");
    for index in 0..setup.symbols {
        let _ = writeln!(
            text,
            "[[paper.instruments]]\nsymbol = {sym:?}\nbase = {base:?}\nquote = \"USDT\"\n\
             price_tick = \"0.01\"\nquantity_tick = \"0.001\"\nmin_quantity = \"0.001\"\n\
             min_notional = \"1\"\nstart_price = \"100\"\n",
            sym = symbol(index),
            base = symbol(index).replace("_USDT", ""),
        );
    }
    // Stops 2 % and targets 3 % away: wide enough that the paper walk at 50x rarely crosses
    // a stop before it is placed, which would halt the symbol and leave it idle.
    for index in 0..setup.symbols {
        let _ = writeln!(
            text,
            "[[watchlist]]\nsymbol = {:?}\nstrategy = {:?}\nsma_fast = 3\nsma_slow = 8\n\
             timeframe_seconds = 60\nnotional = 100\nstop_loss_pct = 2\ntake_profit_pct = 3\n\
             sides = [\"BUY\"]\n",
            symbol(index),
            setup.strategy
        );
    }
    text
}

/// A fresh directory `dir` holding `fillguard.toml` for `setup`; anything there before is
/// removed, so every run starts on an empty database and paper account.
pub fn prepare(setup: &RunSetup, dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("fillguard.toml");
    std::fs::write(&path, config_text(setup, dir))
        .with_context(|| format!("writing {}", path.display()))?;
    if setup.simulator_port.is_some() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // Only its owner may read a secret file, or the agent refuses it.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("sim-secret"))?;
        file.write_all(b"footprint-secret\n")?;
    }
    Ok(path)
}

/// A loopback port free at the time of asking (the kernel's choice), for a run's metrics.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
