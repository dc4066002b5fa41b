//! `flumen dump`: print a saved graph as text IR, Graphviz DOT or SVG, at one of three
//! stages of compilation:
//!
//! - `source` (default): the graph as saved.
//! - `optimized`: after the compiler's pass pipeline (`canonicalize` → `constant_folding` →
//!   `cse` → `dce`, as a `Session` runs it) for the fetched nodes.
//! - `compiled`: the optimized graph with the executable's steps drawn over it — each fused
//!   kernel, GEMM (with its epilogue) and interpreter step as an outlined box around the
//!   nodes it computes — and the compile report as the caption. As text: the report and the
//!   step list with every kernel's IR.
//!
//! The optimized and compiled stages compile for `--fetch` (default: every node nothing
//! else consumes, which for a training graph is the train op and the metrics), feeding every
//! placeholder they need. SVG needs Graphviz's `dot` (`FLUMEN_DOT` names another binary).

use clap::{Args, ValueEnum};
use flumen::compiler::lower::{self, LStep, Lowered, classify};
use flumen::compiler::passes::default_pipeline;
use flumen::compiler::{CompileReport, Unit};
use flumen::runtime::exec::Storage;
use flumen::{GraphDef, GraphError, NodeId, Op, Result};
use flumen_frontend::dot::{DotOptions, Outline, OutlineKind, to_dot_with};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Output formats of `flumen dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// The textual IR (parses back to the same graph); for `--stage compiled`, the compile
    /// report and the executable's steps.
    Text,
    /// Graphviz DOT with name scopes as clusters.
    Dot,
    /// SVG drawn by Graphviz's `dot`.
    Svg,
}

/// Which graph `flumen dump` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// The graph as saved.
    #[default]
    Source,
    /// After the compiler's pass pipeline.
    Optimized,
    /// The optimized graph with the fused kernels and steps of the executable.
    Compiled,
}

/// Arguments of `flumen dump`.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// A graph saved as text IR (`Graph::save`).
    pub model: PathBuf,
    /// Output format [default: from the extension of `-o` (.dot/.gv, .svg), else text].
    #[arg(long, value_enum)]
    pub format: Option<DumpFormat>,
    /// The compilation stage to show.
    #[arg(long, value_enum, default_value_t = Stage::Source)]
    pub stage: Stage,
    /// Nodes to compile for (optimized and compiled stages; repeat or separate with commas)
    /// [default: every node nothing else consumes].
    #[arg(long = "fetch", value_name = "NODE", value_delimiter = ',')]
    pub fetches: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

impl DumpArgs {
    /// The format asked for, else the one the output file's extension names, else text.
    pub fn format(&self) -> DumpFormat {
        self.format.unwrap_or_else(|| {
            match self
                .output
                .as_deref()
                .and_then(Path::extension)
                .and_then(|e| e.to_str())
            {
                Some("dot" | "gv") => DumpFormat::Dot,
                Some("svg") => DumpFormat::Svg,
                _ => DumpFormat::Text,
            }
        })
    }
}

fn invalid(msg: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("flumen dump: {msg}"))
}

/// Runs `flumen dump`.
pub fn run(args: DumpArgs) -> Result<()> {
    let def = GraphDef::load(&args.model)?;
    let format = args.format();
    let model = args.model.display().to_string();
    let text = match args.stage {
        Stage::Source => {
            if !args.fetches.is_empty() {
                return Err(invalid(
                    "--fetch chooses what the optimized and compiled stages compile; \
                     the source stage shows the whole graph (add --stage optimized|compiled)",
                ));
            }
            match format {
                DumpFormat::Text => def.to_string(),
                _ => to_dot_with(&def, &dot_options(format!("{model} (source)"), vec![])),
            }
        }
        Stage::Optimized | Stage::Compiled => {
            let (feeds, fetches) = feeds_and_fetches(&def, &args.fetches)?;
            let fetch_names = names(&def, &fetches);
            if args.stage == Stage::Optimized {
                let unit = default_pipeline().run(Unit {
                    def: def.clone(),
                    outputs: fetches,
                })?;
                match format {
                    DumpFormat::Text => unit.def.to_string(),
                    _ => {
                        let title = format!(
                            "{model} (optimized: {} passes, {} → {} nodes)\nfetches: {fetch_names}",
                            default_pipeline().names().join(" → "),
                            def.len(),
                            unit.def.len()
                        );
                        to_dot_with(&unit.def, &dot_options(title, vec![]))
                    }
                }
            } else {
                let compiled = Compiled::new(&def, &feeds, &fetches)?;
                match format {
                    DumpFormat::Text => compiled.listing(&fetch_names),
                    _ => {
                        let title = format!(
                            "{model} (compiled: {})\nfetches: {fetch_names}",
                            summary(&compiled.report)
                        );
                        to_dot_with(
                            &compiled.unit.def,
                            &dot_options(title, compiled.outlines()?),
                        )
                    }
                }
            }
        }
    };
    let bytes = match format {
        DumpFormat::Svg => render_svg(&text)?,
        _ => text.into_bytes(),
    };
    match args.output {
        Some(path) => std::fs::write(&path, bytes).map_err(|e| GraphError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| GraphError::Io {
                path: "<stdout>".into(),
                msg: e.to_string(),
            })?,
    }
    Ok(())
}

fn dot_options(title: String, outlines: Vec<Outline>) -> DotOptions {
    DotOptions {
        title: Some(title),
        outlines,
        legend: true,
    }
}

fn names(def: &GraphDef, ids: &[NodeId]) -> String {
    ids.iter()
        .map(|&i| def.node(i).name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placeholders to feed and the nodes to fetch: `fetch` by name, or every node no
/// other node consumes (by data or control edge); every placeholder they depend on is fed.
fn feeds_and_fetches(def: &GraphDef, fetch: &[String]) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
    let fetches = crate::fetch::resolve_fetches(def, fetch, "dump")?;
    let needed = def.reachable(&fetches, false);
    let feeds = def
        .iter()
        .filter(|(id, n)| needed[id.0] && matches!(n.op, Op::Placeholder { .. }))
        .map(|(id, _)| id)
        .collect();
    Ok((feeds, fetches))
}

/// One line about a compile report (counts only; times vary from run to run).
fn summary(r: &CompileReport) -> String {
    format!(
        "{} steps, {} fused kernels ({} distinct), {} GEMM epilogues, {} interpreter steps, \
         arena {} (without reuse {})",
        r.steps,
        r.kernels,
        r.compiled_kernels,
        r.epilogues,
        r.interpreted.len(),
        bytes(r.arena_bytes.0),
        bytes(r.arena_bytes.1)
    )
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// A graph compiled as a `Session` compiles it: the report of the real compilation, and
/// the optimized graph and lowered steps it came from.
struct Compiled {
    report: CompileReport,
    unit: Unit,
    lowered: Lowered,
}

impl Compiled {
    fn new(def: &GraphDef, feeds: &[NodeId], fetches: &[NodeId]) -> Result<Compiled> {
        let (_exe, report) = flumen::compiler::compile(def, feeds, fetches)?;
        let unit = default_pipeline().run(Unit {
            def: def.clone(),
            outputs: fetches.to_vec(),
        })?;
        let feed_types: Vec<_> = feeds
            .iter()
            .map(|&f| (def.node(f).name.clone(), def.node(f).ty.clone()))
            .collect();
        let mut lowered = lower::lower(&unit, &feed_types)?;
        // Arena offsets as the executable has them (for the listing).
        lower::memory::plan(&mut lowered);
        Ok(Compiled {
            report,
            unit,
            lowered,
        })
    }

    fn node(&self, name: &str) -> Result<NodeId> {
        self.unit.def.find(name).ok_or_else(|| {
            invalid(format!(
                "the compiled step `{name}` names no node of the optimized graph"
            ))
        })
    }

    /// The text listing: report, buffers, then one entry per step.
    fn listing(&self, fetch_names: &str) -> String {
        let l = &self.lowered;
        let mut out = format!(
            "// compiled for fetches: {fetch_names}\n// {}\n",
            summary(&self.report)
        );
        for (i, b) in l.buffers.iter().enumerate() {
            let at = match b.storage {
                Storage::Feed(f) => format!("feed `{}`", l.feeds[f].0),
                Storage::Variable(v) => format!("variable `{}`", l.variables[v]),
                Storage::Arena { offset } => format!("arena +{offset}"),
                Storage::Alias(a) => format!("alias of b{}", a.0),
                ref other => format!("{other:?}"),
            };
            out.push_str(&format!("// b{i}: {} × {}, {at}\n", b.dtype, b.numel));
        }
        for (i, s) in self.lowered.steps.iter().enumerate() {
            let line = match s {
                LStep::Kernel(k) => format!("{k}"),
                LStep::MatMul {
                    node: _,
                    a,
                    b,
                    c,
                    dims,
                    dtype,
                    epilogue,
                } => {
                    let mut t = format!(
                        "gemm {dtype} b{} = b{} · b{} (batch {}, m {}, n {}, k {}{}{})",
                        c.0,
                        a.0,
                        b.0,
                        dims.batch,
                        dims.m,
                        dims.n,
                        dims.k,
                        if dims.transpose_a { ", aᵀ" } else { "" },
                        if dims.transpose_b { ", bᵀ" } else { "" }
                    );
                    if let Some(k) = epilogue {
                        t.push_str(&format!(" with epilogue\n{k}"));
                    }
                    t
                }
                LStep::Interpret {
                    op, name, output, ..
                } => format!("interpret {} `{name}` -> b{}", op.name(), output.0),
                LStep::Copy { src, dst } => format!("copy b{} -> b{}", src.0, dst.0),
            };
            out.push_str(&format!("step {i}: {}\n", line.trim_end()));
        }
        out
    }

    /// One outline per step that computes nodes: the nodes a kernel computes (the roots
    /// lowering records: one node, a reduction group, or merged siblings) and the virtual
    /// nodes inlined into them alone, a GEMM's node and its epilogue's nodes, or an
    /// interpreted node. Virtual nodes inlined into several kernels (shared views, scalar
    /// constants) stay outside.
    fn outlines(&self) -> Result<Vec<Outline>> {
        let def = &self.unit.def;
        let executed = def.reachable(&self.unit.outputs, false);
        let mut fetched = vec![false; def.len()];
        for o in &self.unit.outputs {
            fetched[o.0] = true;
        }
        let virt = classify::classify(def, &executed, &fetched);
        // The kernels each virtual node is inlined into, through chains of virtual nodes
        // (consumers have larger ids, so one reverse sweep settles them).
        let consumers = def.consumers();
        let mut roots: Vec<BTreeSet<NodeId>> = vec![BTreeSet::new(); def.len()];
        for (id, _) in def.iter().collect::<Vec<_>>().into_iter().rev() {
            if !(executed[id.0] && virt[id.0]) {
                continue;
            }
            for &c in &consumers[id.0] {
                if !executed[c.0] {
                    continue;
                }
                if virt[c.0] {
                    let r = roots[c.0].clone();
                    roots[id.0].extend(r);
                } else {
                    roots[id.0].insert(c);
                }
            }
        }
        // A kernel's box: the nodes it computes (its roots, which lowering records) and
        // the virtual nodes inlined into those roots alone.
        let group = |kernel_roots: &[NodeId]| -> Vec<NodeId> {
            let mut nodes: Vec<NodeId> = kernel_roots.to_vec();
            nodes.extend(def.iter().map(|(id, _)| id).filter(|id| {
                !kernel_roots.contains(id)
                    && !roots[id.0].is_empty()
                    && roots[id.0].iter().all(|r| kernel_roots.contains(r))
            }));
            nodes
        };
        let mut outlines = Vec::new();
        for (i, s) in self.lowered.steps.iter().enumerate() {
            match s {
                LStep::Kernel(k) => {
                    let what = if k.inner.is_empty() {
                        "kernel"
                    } else {
                        "reduction kernel"
                    };
                    let nodes = group(&k.roots);
                    outlines.push(Outline {
                        label: format!(
                            "step {i}: {what} ({} op{})",
                            nodes.len(),
                            if nodes.len() == 1 { "" } else { "s" }
                        ),
                        kind: OutlineKind::Kernel,
                        nodes,
                    });
                }
                LStep::MatMul {
                    node,
                    dims,
                    epilogue,
                    ..
                } => {
                    let mut nodes = vec![*node];
                    let label = match epilogue {
                        Some(k) => {
                            nodes.extend(group(&k.roots));
                            format!("step {i}: GEMM {}×{}×{} + epilogue", dims.m, dims.k, dims.n)
                        }
                        None => format!("step {i}: GEMM {}×{}×{}", dims.m, dims.k, dims.n),
                    };
                    outlines.push(Outline {
                        label,
                        kind: OutlineKind::Gemm,
                        nodes,
                    });
                }
                LStep::Interpret { name, .. } => outlines.push(Outline {
                    label: format!("step {i}: interpreter"),
                    kind: OutlineKind::Interpreter,
                    nodes: vec![self.node(name)?],
                }),
                LStep::Copy { .. } => {}
            }
        }
        Ok(outlines)
    }
}

/// Render DOT text to SVG with Graphviz's `dot` (or the program `FLUMEN_DOT` names).
pub fn render_svg(dot: &str) -> Result<Vec<u8>> {
    let program = std::env::var_os("FLUMEN_DOT").unwrap_or_else(|| "dot".into());
    let shown = PathBuf::from(&program).display().to_string();
    let mut child = Command::new(&program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                invalid(format!(
                    "--format svg needs Graphviz, but `{shown}` was not found; install the \
                     Debian/Ubuntu package `graphviz` (`sudo apt-get install graphviz`), or \
                     write DOT with `--format dot` and render it elsewhere"
                ))
            } else {
                invalid(format!("could not run Graphviz `{shown}`: {e}"))
            }
        })?;
    // Feed the input from another thread so a large picture cannot fill both pipes.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = dot.to_string();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| invalid(format!("Graphviz `{shown}` failed: {e}")))?;
    let fed = feeder.join().unwrap_or(Ok(()));
    if !out.status.success() {
        return Err(invalid(format!(
            "Graphviz `{shown} -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    fed.map_err(|e| invalid(format!("writing to Graphviz `{shown}`: {e}")))?;
    Ok(out.stdout)
}
