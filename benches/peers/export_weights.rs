//! Write the initial variables of the benchmark network (`benches/common`: the tutorial's
//! 784-300-10 MLP, default seed) to a safetensors file, so the Python peers start from the
//! very same weights: `layer1/W [784,300]`, `layer1/b [300]`, `layer2/W [300,10]`,
//! `layer2/b [10]`, f32.
//!
//! Run: `cargo run --release --example export_bench_weights -- PATH`
//! (`benches/peers/run_all.py` does it).

#[path = "../common/mod.rs"]
mod common;

use flumen::Session;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: export_bench_weights PATH.safetensors");
        return ExitCode::FAILURE;
    };
    let result = common::params_graph().and_then(|g| Session::new(&g).save_checkpoint(&path));
    match result {
        Ok(()) => {
            println!("wrote {path}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
