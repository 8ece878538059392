use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fillguard::cli::Cli::parse();
    match fillguard::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("fillguard: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
