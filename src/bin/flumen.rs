//! The `flumen` command-line tool.
//!
//! - `flumen dump MODEL [--format text|dot] [-o FILE]`: print a saved graph (text IR) as
//!   text IR or Graphviz DOT.

use clap::{Parser, Subcommand, ValueEnum};
use flumen::GraphDef;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "flumen", version, about = "Flumen dataflow graph compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    /// The textual IR (parses back to the same graph).
    Text,
    /// Graphviz DOT with name scopes as clusters.
    Dot,
}

#[derive(Subcommand)]
enum Command {
    /// Print a saved graph as text IR or DOT.
    Dump {
        /// A graph saved as text IR (`Graph::save`).
        model: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: DumpFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> flumen::Result<()> {
    match cli.command {
        Command::Dump {
            model,
            format,
            output,
        } => {
            let def = GraphDef::load(&model)?;
            let text = match format {
                DumpFormat::Text => def.to_string(),
                DumpFormat::Dot => def.to_dot(),
            };
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|e| flumen::GraphError::Io {
                    path: path.display().to_string(),
                    msg: e.to_string(),
                })?,
                None => print!("{text}"),
            }
            Ok(())
        }
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
