//! `flumen dump`: print a saved graph as text IR or Graphviz DOT.

use clap::{Args, ValueEnum};
use flumen::GraphDef;
use std::path::PathBuf;

/// Output formats of `flumen dump`.
#[derive(Clone, Copy, ValueEnum)]
pub enum DumpFormat {
    /// The textual IR (parses back to the same graph).
    Text,
    /// Graphviz DOT with name scopes as clusters.
    Dot,
}

/// Arguments of `flumen dump`.
#[derive(Args)]
pub struct DumpArgs {
    /// A graph saved as text IR (`Graph::save`).
    model: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: DumpFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `flumen dump`.
pub fn run(args: DumpArgs) -> flumen::Result<()> {
    let def = GraphDef::load(&args.model)?;
    let text = match args.format {
        DumpFormat::Text => def.to_string(),
        DumpFormat::Dot => def.to_dot(),
    };
    match args.output {
        Some(path) => std::fs::write(&path, text).map_err(|e| flumen::GraphError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?,
        None => print!("{text}"),
    }
    Ok(())
}
