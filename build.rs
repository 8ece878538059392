//! Build script: exports the target triple being compiled for as `BUILD_TARGET_TRIPLE`, so
//! `fillguard --version` and `fillguard_build_info{target}` name the exact triple a binary
//! was built for (a Pi binary says `armv7-unknown-linux-gnueabihf`). Not a `FILLGUARD_*`
//! name: cargo also sets the variable for test processes, and the configuration would read
//! a `FILLGUARD_` variable as a setting. It must not do anything else: no code generation,
//! no probing of the build machine.

fn main() {
    // Cargo always sets TARGET for build scripts; the fallback keeps a
    // hand-run build from failing over a label.
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=BUILD_TARGET_TRIPLE={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
