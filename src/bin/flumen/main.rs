//! The `flumen` command-line tool: one module per subcommand.
//!
//! - `flumen dump MODEL [--format text|dot|svg] [--stage source|optimized|compiled]
//!   [--fetch NODE,..] [-o FILE]`: print a saved graph (text IR) as text IR, Graphviz DOT or
//!   SVG, as saved, optimized or compiled (`dump.rs`).

mod dump;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "flumen", version, about = "Flumen dataflow graph compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a saved graph as text IR, DOT or SVG (as saved, optimized or compiled).
    Dump(dump::DumpArgs),
}

fn run(cli: Cli) -> flumen::Result<()> {
    match cli.command {
        Command::Dump(args) => dump::run(args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
