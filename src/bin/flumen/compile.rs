//! `flumen compile`: export a saved model as a self-contained shared library and C header.
//!
//! ```text
//! flumen compile MODEL --feed x:f32[1,784] --fetch logits -o libmnist.so --header mnist.h
//! ```
//!
//! `MODEL` is a model directory (`graph.flumen` + `variables.safetensors`) or a `.flumen`
//! file (variables from the `.safetensors` file of the same stem, if present). Each
//! `--feed NAME[:DTYPE[DIMS]]` makes a placeholder an input, in order; a type different
//! from the saved one re-types the graph (e.g. batch 1 for a model trained on batches of
//! 100). Placeholders the fetches need but no `--feed` names become inputs after the named
//! ones, with their saved types. `--fetch` names the outputs; fetching a train op makes
//! every call a training step.

use clap::Args;
use flumen::aot::{ExportOptions, compile_library};
use flumen::model_dir::{load_model, specialize_feeds};
use flumen::{DType, Graph, GraphError, Op, Result, Session, TensorType};
use std::path::PathBuf;

/// Arguments of `flumen compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// A model directory or a `.flumen` graph file.
    pub model: PathBuf,
    /// An input: `NAME` or `NAME:DTYPE[D0,D1,..]` (repeat for several, in order).
    #[arg(long = "feed", value_name = "NAME[:TYPE]")]
    pub feeds: Vec<String>,
    /// An output node (repeat or separate with commas).
    #[arg(
        long = "fetch",
        value_name = "NODE",
        value_delimiter = ',',
        required = true
    )]
    pub fetches: Vec<String>,
    /// The shared library to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write the C header here.
    #[arg(long)]
    pub header: Option<PathBuf>,
    /// C prefix of the entry points [default: from the output name, libmnist.so → mnist].
    #[arg(long)]
    pub prefix: Option<String>,
    /// The static AOT runtime [default: $FLUMEN_AOT_RUNTIME, next to flumen, or built
    /// from the source tree].
    #[arg(long)]
    pub runtime_lib: Option<PathBuf>,
    /// Keep the kernel object, glue C and version script in this directory.
    #[arg(long, value_name = "DIR")]
    pub keep_intermediates: Option<PathBuf>,
}

fn invalid(msg: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("flumen compile: {msg}"))
}

/// Parse `NAME` or `NAME:DTYPE[D0,D1,..]` (`f32[]` is a scalar).
pub fn parse_feed(spec: &str) -> Result<(String, Option<TensorType>)> {
    let Some((name, ty)) = spec.split_once(':') else {
        return Ok((spec.trim().to_string(), None));
    };
    let bad = |why: &str| {
        invalid(format!(
            "--feed `{spec}`: {why} (expected NAME:DTYPE[D0,D1,..], e.g. x:f32[1,784])"
        ))
    };
    let (dtype, dims) = ty
        .split_once('[')
        .ok_or_else(|| bad("no `[` after the dtype"))?;
    let dtype: DType = dtype.trim().parse().map_err(|e: String| bad(&e))?;
    let dims = dims
        .trim()
        .strip_suffix(']')
        .ok_or_else(|| bad("no closing `]`"))?;
    let shape = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|d| d.trim().parse::<usize>().map_err(|_| bad("bad dimension")))
            .collect::<Result<Vec<_>>>()?
    };
    Ok((name.trim().to_string(), Some(TensorType::new(dtype, shape))))
}

/// Runs `flumen compile`.
pub fn run(args: CompileArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let def = model.graph.def();
    let mut retype = Vec::new();
    let mut feed_names = Vec::new();
    for spec in &args.feeds {
        let (name, ty) = parse_feed(spec)?;
        let node = def
            .find(&name)
            .ok_or_else(|| invalid(format!("--feed `{name}`: the model has no such node")))?;
        if feed_names.contains(&name) {
            return Err(invalid(format!("--feed `{name}` is given twice")));
        }
        if let Some(ty) = ty
            && ty != def.node(node).ty
        {
            retype.push((name.clone(), ty));
        }
        feed_names.push(name);
    }
    // Re-typed inputs: a new graph with every shape re-inferred, variables carried over.
    let (graph, mut sess) = if retype.is_empty() {
        (model.graph.clone(), model.session)
    } else {
        let graph = Graph::from_def(specialize_feeds(&def, &retype)?);
        let mut sess = Session::new(&graph);
        for (name, value) in model.session.variables() {
            let var = graph
                .get(name)
                .ok_or_else(|| invalid(format!("lost variable `{name}`")))?;
            sess.set_variable(&var, value.clone())?;
        }
        (graph, sess)
    };
    let def = graph.def();
    let fetches = args
        .fetches
        .iter()
        .map(|n| {
            graph
                .get(n.trim())
                .ok_or_else(|| invalid(format!("--fetch `{n}`: the model has no such node")))
        })
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<_> = fetches.iter().map(|t| t.id()).collect();
    let needed = def.reachable(&ids, false);
    for (id, node) in def.iter() {
        if needed[id.0]
            && matches!(node.op, Op::Placeholder { .. })
            && !feed_names.contains(&node.name)
        {
            feed_names.push(node.name.clone());
        }
    }
    let feeds = feed_names
        .iter()
        .map(|n| {
            graph
                .get(n)
                .ok_or_else(|| invalid(format!("no placeholder `{n}`")))
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = ExportOptions {
        prefix: args.prefix,
        header: args.header.clone(),
        runtime_lib: args.runtime_lib,
        cc: None,
        keep_dir: args.keep_intermediates,
    };
    let feed_refs: Vec<_> = feeds.iter().collect();
    let fetch_refs: Vec<_> = fetches.iter().collect();
    let lib = compile_library(&mut sess, &feed_refs, &fetch_refs, &args.output, &opts)?;
    println!("wrote {} (prefix `{}`)", lib.library.display(), lib.prefix);
    if let Some(h) = &args.header {
        println!("wrote {}", h.display());
    }
    for (kind, list) in [
        ("input", &lib.inputs),
        ("output", &lib.outputs),
        ("variable", &lib.variables),
    ] {
        for (i, (name, ty)) in list.iter().enumerate() {
            println!("  {kind} {i}: {name} {ty}");
        }
    }
    let r = &lib.compile;
    println!(
        "  {} steps, {} kernels ({} distinct), {} GEMM epilogues, {} interpreted{}",
        r.steps,
        r.kernels,
        r.compiled_kernels,
        r.epilogues,
        r.interpreted.len(),
        if r.interpreted.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.interpreted.join(", "))
        }
    );
    Ok(())
}
