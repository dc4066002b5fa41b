//! `flumen explain`: run equality saturation (`flumen::compiler::egraph`) on a saved graph
//! and show which rules fired in each stage, how long each stage took, and why the
//! extracted graph won (or why the input was kept): the cost of both under the cost model
//! and the nodes whose computation changed, with the rule that proposed each.
//!
//! `--graph` also prints the rewritten graph as text IR; `-o FILE` writes it to a file.

use clap::Args;
use flumen::compiler::Unit;
use flumen::compiler::egraph::{Config, explain, saturate};
use flumen::{GraphDef, Result};
use std::path::PathBuf;

/// Arguments of `flumen explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A graph saved as text IR (`Graph::save`).
    pub model: PathBuf,
    /// Nodes to compute, comma-separated [default: every node nothing else consumes].
    #[arg(long, value_delimiter = ',')]
    pub fetch: Vec<String>,
    /// Also print the rewritten graph as text IR.
    #[arg(long)]
    pub graph: bool,
    /// Write the rewritten graph (text IR) to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Run `flumen explain`.
pub fn run(args: ExplainArgs) -> Result<()> {
    let def = GraphDef::load(&args.model)?;
    let outputs = crate::fetch::resolve_fetches(&def, &args.fetch, "explain")?;
    let (after, report) = saturate(Unit { def, outputs }, &Config::default())?;
    print!("{}", explain(&report));
    if args.graph {
        print!("\n{}", after.def);
    }
    if let Some(path) = &args.output {
        after.def.save(path)?;
    }
    Ok(())
}
