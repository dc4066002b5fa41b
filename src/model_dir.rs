//! Model files: a graph (text IR) plus its variables (safetensors) saved together, loaded
//! with everything validated before anything runs.
//!
//! A **model directory** holds `graph.flumen` ([`Graph::save`]) and `variables.safetensors`
//! ([`Session::save_checkpoint`]). [`load_model`] also accepts a `.flumen` file: its
//! variables are then read from the `.safetensors` file of the same stem next to it
//! (what `cargo run --example mnist` writes: `out/mnist.flumen` + `out/mnist.safetensors`),
//! or, when there is none, take their initial values from the graph when first used.
//!
//! Loading checks, and reports as a [`GraphError`] naming the file and the problem:
//! unknown ops, malformed or out-of-range attributes and types that disagree with the
//! op's shape rule (the text IR parser, with line and column); graph invariants (the
//! verifier); a missing, truncated or corrupt checkpoint; a tensor that is not a variable
//! of the graph, a variable the checkpoint lacks, and dtype or shape mismatches between
//! graph and weights. Loading never panics and never executes the graph.
//!
//! [`specialize_feeds`] re-types placeholders (a model trained with batches of 100,
//! exported for batch 1) by rebuilding the graph with every shape rule re-run.

use crate::Session;
use flumen_frontend::op::Op;
use flumen_frontend::{Graph, GraphDef, GraphError, NodeId, Result, TensorType};
use std::path::{Path, PathBuf};

/// The graph file inside a model directory.
pub const GRAPH_FILE: &str = "graph.flumen";
/// The variables file inside a model directory.
pub const VARIABLES_FILE: &str = "variables.safetensors";

/// A loaded model: its graph and a session holding its variables.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// A session on the graph with the checkpoint's variables restored.
    pub session: Session,
    /// The checkpoint the variables came from, if any.
    pub checkpoint: Option<PathBuf>,
}

fn io(path: &Path, msg: impl Into<String>) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Save `session`'s graph and every variable's current value as the model directory
/// `dir` (created if needed; its two files are replaced).
pub fn save_model(dir: impl AsRef<Path>, session: &mut Session) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| io(dir, format!("creating the directory: {e}")))?;
    session.graph().save(dir.join(GRAPH_FILE))?;
    session.save_checkpoint(dir.join(VARIABLES_FILE))
}

/// The graph file and the checkpoint (if any) of the model at `path`: a model directory,
/// or a `.flumen` file with an optional `.safetensors` sibling.
pub fn model_files(path: impl AsRef<Path>) -> Result<(PathBuf, Option<PathBuf>)> {
    let path = path.as_ref();
    if path.is_dir() {
        let graph = path.join(GRAPH_FILE);
        let vars = path.join(VARIABLES_FILE);
        if !graph.is_file() {
            return Err(io(
                path,
                format!("not a model directory: it has no {GRAPH_FILE}"),
            ));
        }
        if !vars.is_file() {
            return Err(io(
                path,
                format!("not a model directory: it has no {VARIABLES_FILE}"),
            ));
        }
        return Ok((graph, Some(vars)));
    }
    if !path.is_file() {
        return Err(io(
            path,
            "no such model: expected a model directory or a .flumen file",
        ));
    }
    let vars = path.with_extension("safetensors");
    Ok((path.to_path_buf(), vars.is_file().then_some(vars)))
}

/// Load and validate the model at `path` (see the module docs); nothing is executed.
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    let (graph_file, checkpoint) = model_files(path)?;
    // Parse errors carry a line and column but not the file: name it.
    let def = GraphDef::load(&graph_file).map_err(|e| match e {
        GraphError::Io { .. } => e,
        e => io(&graph_file, e.to_string()),
    })?;
    flumen_compiler::verify(&def).map_err(|e| io(&graph_file, format!("invalid graph: {e}")))?;
    let graph = Graph::from_def(def);
    let mut session = Session::new(&graph);
    if let Some(c) = &checkpoint {
        session.restore(c)?;
    }
    Ok(Model {
        graph,
        session,
        checkpoint,
    })
}

/// A copy of `def` whose placeholders named in `feeds` have the given types, with every
/// node's type re-inferred. Errors name a placeholder that does not exist and the first
/// node whose shape rule rejects the new types (a reshape to a fixed size, say).
pub fn specialize_feeds(def: &GraphDef, feeds: &[(String, TensorType)]) -> Result<GraphDef> {
    for (name, _) in feeds {
        match def.find(name).map(|id| &def.node(id).op) {
            Some(Op::Placeholder { .. }) => {}
            Some(op) => {
                return Err(GraphError::invalid(format!(
                    "feed `{name}`: it is a {} node, not a placeholder",
                    op.name()
                )));
            }
            None => {
                return Err(GraphError::invalid(format!(
                    "feed `{name}`: the model has no node of that name"
                )));
            }
        }
    }
    let mut out = GraphDef::new();
    for node in def.nodes() {
        let op = match feeds.iter().find(|(n, _)| *n == node.name) {
            Some((_, ty)) => Op::Placeholder {
                dtype: ty.dtype,
                shape: ty.shape.clone(),
            },
            None => node.op.clone(),
        };
        let id: NodeId = out
            .add(
                op,
                &node.inputs,
                &node.control_inputs,
                node.name.clone(),
                None,
            )
            .map_err(|e| {
                GraphError::invalid(format!(
                    "re-typing the inputs as {}: {e}",
                    feeds
                        .iter()
                        .map(|(n, t)| format!("{n}:{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        debug_assert_eq!(id.0 + 1, out.len());
        if matches!(node.op, Op::Variable { .. }) && out.node(id).ty != node.ty {
            return Err(GraphError::invalid(format!(
                "re-typing the inputs changes variable `{}` from {} to {}",
                node.name,
                node.ty,
                out.node(id).ty
            )));
        }
    }
    Ok(out)
}
