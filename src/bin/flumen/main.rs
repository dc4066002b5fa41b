//! The `flumen` command-line tool: one module per subcommand.
//!
//! - `flumen dump MODEL [--format text|dot|svg] [--stage source|optimized|compiled]
//!   [--fetch NODE,..] [-o FILE]`: print a saved graph (text IR) as text IR, Graphviz DOT or
//!   SVG, as saved, optimized or compiled (`dump.rs`).
//! - `flumen compile MODEL --feed NAME[:TYPE] --fetch NODE -o LIB.so [--header H.h]`: export
//!   a model as a self-contained shared library and C header (`compile.rs`).
//! - `flumen explain MODEL [--fetch NODE,..] [--graph] [-o FILE]`: equality saturation on a
//!   saved graph: the rules that fired and why the extracted graph won (`explain.rs`).

mod compile;
mod dump;
mod explain;
mod fetch;

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
    /// Export a model as a self-contained shared library (.so) and C header.
    Compile(compile::CompileArgs),
    /// Show which rewrite rules fire on a saved graph and why the extracted graph wins.
    Explain(explain::ExplainArgs),
}

fn run(cli: Cli) -> flumen::Result<()> {
    match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Explain(args) => explain::run(args),
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
