//! Equality saturation with [egg](https://egraphs-good.github.io/): the graph goes into an
//! e-graph, rulesets run in stages, and a sharing-aware extractor picks the cheapest
//! equivalent graph under a cost model of flops and bytes moved.
//!
//! - [`lang`]: the e-graph language derived from the op table, the dtype/shape/constant
//!   analysis, and graph → e-graph conversion;
//! - [`rules`]: the rulesets as named data (`algebra`, `fusion`, `layout`, `attention`),
//!   each rule with the identity it states;
//! - [`runner`]: staged saturation with node, iteration and time limits;
//! - [`extract`]: the cost model and the DAG-aware extractor (a shared node counts once:
//!   a greedy fixpoint over cost sets, then local improvement under the global cost);
//! - [`convert`]: e-graph → graph;
//! - [`pass`]: the `saturate` pass, and [`explain`] for `flumen explain`.
//!
//! Stages (see [`default_stages`], each keeping the rules before it): `algebra` (shapes and
//! algebraic identities), then `fusion` (fusion-friendly forms), then `layout` + `attention` (moving transposes, and
//! recognising masked attention whose mask has a BigBird or ETC layout, which adds the
//! blockified form of MODELS.md §4 to the class; the extractor keeps it when it is
//! cheaper, so dense attention still wins at small n).

pub mod convert;
pub mod extract;
pub mod lang;
pub mod pass;
pub mod rules;
pub mod runner;

pub use pass::Saturate;
pub use runner::{Limits, Rule, Ruleset, StageReport, Stop};

use crate::pass::Unit;
use extract::{Choice, Cost, dag_cost, greedy_dag, node_cost};
use flumen_frontend::{GraphError, Result};
use lang::{Sym, to_egraph};
use std::collections::HashSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The stages, in order.
    pub stages: Vec<Ruleset>,
    /// Limits of every stage.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stages: default_stages(),
            limits: Limits::default(),
        }
    }
}

/// The default stages: algebra, then fusion, then layout with attention. Each stage keeps
/// the rules of the stages before it, so that what its rewrites enable (two transposes
/// moved next to each other) is simplified in the same stage.
pub fn default_stages() -> Vec<Ruleset> {
    let algebra = rules::algebra::rules();
    let fusion = [algebra.clone(), rules::fusion::rules()].concat();
    let layout = [
        fusion.clone(),
        rules::layout::rules(),
        rules::attention::rules(),
    ]
    .concat();
    vec![
        Ruleset {
            name: "algebra",
            rules: algebra,
        },
        Ruleset {
            name: "fusion",
            rules: fusion,
        },
        Ruleset {
            name: "layout+attention",
            rules: layout,
        },
    ]
}

/// One class whose chosen e-node differs from the input graph's.
#[derive(Clone, Debug)]
pub struct Change {
    /// The source node whose value the class holds (or the class id).
    pub name: String,
    /// dtype and shape.
    pub ty: String,
    /// The input graph's op there.
    pub before: String,
    /// The chosen op, and the rule that created it.
    pub after: String,
    /// The rule that added the chosen e-node, if a rule did.
    pub rule: Option<&'static str>,
}

/// What saturation and extraction did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One report per stage.
    pub stages: Vec<StageReport>,
    /// Time to build the e-graph.
    pub build: Duration,
    /// Time to extract and rebuild the graph (local improvement included).
    pub extract: Duration,
    /// Of which the local improvement of the greedy choice.
    pub improve: Duration,
    /// Cost of the input graph (DAG, each node once).
    pub input_cost: Cost,
    /// Cost of the greedy extraction (`None` if it was cyclic).
    pub extracted_cost: Option<Cost>,
    /// Whether the extracted graph replaced the input.
    pub changed: bool,
    /// Where the chosen graph differs from the input (up to 40 classes).
    pub changes: Vec<Change>,
    /// Nodes before and after.
    pub nodes: (usize, usize),
}

impl Report {
    /// Total time (build + stages + extraction).
    pub fn total(&self) -> Duration {
        self.build + self.extract + self.stages.iter().map(|s| s.time).sum::<Duration>()
    }
}

/// Saturate `unit` and extract the cheapest equivalent graph.
pub fn saturate(unit: Unit, config: &Config) -> Result<(Unit, Report)> {
    let mut report = Report {
        nodes: (unit.def.len(), unit.def.len()),
        ..Report::default()
    };
    let t = Instant::now();
    let mut conv = to_egraph(&unit);
    report.build = t.elapsed();
    // The roots: outputs and the inputs of pinned nodes.
    let mut roots: Vec<egg::Id> = unit.outputs.iter().map(|o| conv.class_of[o.0]).collect();
    for (id, node) in unit.def.iter() {
        if conv.pinned[id.0] {
            roots.extend(node.inputs.iter().map(|i| conv.class_of[i.0]));
            roots.push(conv.class_of[id.0]);
        }
    }
    conv.egraph.analysis.roots = roots.clone();
    let mut provenance = runner::Provenance::new();
    for stage in &config.stages {
        let r = runner::run_stage(&mut conv.egraph, stage, &config.limits, &mut provenance)
            .map_err(|e| GraphError::invalid(format!("saturate: {e}")))?;
        report.stages.push(r);
    }
    let t = Instant::now();
    let eg = &conv.egraph;
    report.input_cost = input_cost(&conv, &unit);
    // Greedy choices can (rarely) form a cycle through stale cost sets: ban the node that
    // closes it and choose again.
    let mut banned = HashSet::new();
    let mut greedy = greedy_dag(eg, &banned);
    for _ in 0..16 {
        match extract::find_cycle(eg, &greedy, &roots) {
            None => break,
            Some(class) => {
                banned.insert((class, greedy[&class].clone()));
                greedy = greedy_dag(eg, &banned);
            }
        }
    }
    let t_improve = Instant::now();
    extract::improve(eg, &mut greedy, &roots, config.limits.improve_time);
    report.improve = t_improve.elapsed();
    report.extracted_cost = dag_cost(eg, &greedy, &roots);
    let use_greedy = matches!(report.extracted_cost,
        Some(c) if c.total() < report.input_cost.total() * (1.0 - 1e-9));
    let out = if use_greedy {
        report.changed = true;
        report.changes = changes(&conv, &unit, &greedy, &provenance);
        convert::from_egraph(&unit, &conv, &greedy)?
    } else {
        unit
    };
    report.nodes.1 = out.def.len();
    report.extract = t.elapsed();
    Ok((out, report))
}

/// The cost of the input graph as it is: every source node the outputs and the pinned
/// nodes need, once.
fn input_cost(conv: &lang::Converted, unit: &Unit) -> Cost {
    let mut wanted = unit.outputs.clone();
    wanted.extend(
        unit.def
            .iter()
            .filter(|(id, _)| conv.pinned[id.0])
            .map(|(id, _)| id),
    );
    let needed = unit.def.reachable(&wanted, true);
    let eg = &conv.egraph;
    let mut total = Cost::default();
    for (id, node) in unit.def.iter() {
        if !needed[id.0] || conv.pinned[id.0] {
            continue;
        }
        if let Some(n) = source_enode(conv, unit, id) {
            total = total + node_cost(eg, &n, &node.ty);
        }
    }
    total
}

/// The canonical e-node of source node `id` (its op over its inputs' classes).
fn source_enode(
    conv: &lang::Converted,
    unit: &Unit,
    id: flumen_frontend::NodeId,
) -> Option<lang::ENode> {
    let eg = &conv.egraph;
    let class = eg.find(conv.class_of[id.0]);
    let node = unit.def.node(id);
    let children: Vec<egg::Id> = node
        .inputs
        .iter()
        .map(|i| eg.find(conv.class_of[i.0]))
        .collect();
    eg[class]
        .nodes
        .iter()
        .find(|n| {
            n.children == children
                && match (&node.op, n.sym) {
                    (flumen_frontend::Op::Constant(v), Sym::Const(_)) => {
                        eg.analysis.constant(n.sym).is_some_and(|c| c.bit_eq(v))
                    }
                    (op, Sym::Op(_)) => eg.analysis.op(n.sym) == Some(op),
                    _ => false,
                }
        })
        .cloned()
}

fn changes(
    conv: &lang::Converted,
    unit: &Unit,
    chosen: &Choice,
    provenance: &runner::Provenance,
) -> Vec<Change> {
    let eg = &conv.egraph;
    let canon: std::collections::HashMap<lang::ENode, &'static str> = provenance
        .iter()
        .map(|(n, r)| {
            let mut n = n.clone();
            for c in n.children.iter_mut() {
                *c = eg.find(*c);
            }
            (n, *r)
        })
        .collect();
    let mut out = Vec::new();
    for (id, node) in unit.def.iter() {
        let class = eg.find(conv.class_of[id.0]);
        if conv.pinned[id.0] {
            continue;
        }
        let (Some(before), Some(after)) = (source_enode(conv, unit, id), chosen.get(&class)) else {
            continue;
        };
        let before = &before;
        if before == after || out.iter().any(|c: &Change| c.name == node.name) {
            continue;
        }
        let ty = &eg[class].data.ty;
        let cb = node_cost(eg, before, ty).total();
        let ca = node_cost(eg, after, ty).total();
        out.push(Change {
            name: node.name.clone(),
            ty: ty.to_string(),
            before: format!("{} (own cost {cb:.3e})", eg.analysis.describe(before.sym)),
            after: format!("{} (own cost {ca:.3e})", eg.analysis.describe(after.sym)),
            rule: canon.get(after).copied(),
        });
        if out.len() >= 40 {
            break;
        }
    }
    out
}

/// A human-readable account of a report: which rules fired in each stage, and why the
/// extracted graph won (or lost) against the input.
pub fn explain(report: &Report) -> String {
    let mut s = String::new();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let _ = writeln!(
        s,
        "equality saturation: {} stages, {:.2} ms in all (e-graph built in {:.2} ms, extraction {:.2} ms, of which {:.2} ms local improvement)",
        report.stages.len(),
        ms(report.total()),
        ms(report.build),
        ms(report.extract),
        ms(report.improve)
    );
    for st in &report.stages {
        let _ = writeln!(
            s,
            "stage `{}`: {} iterations, stopped: {:?}, {:.2} ms, {} e-nodes in {} classes",
            st.name,
            st.iterations,
            st.stop,
            ms(st.time),
            st.nodes,
            st.classes
        );
        if st.fired.is_empty() {
            let _ = writeln!(s, "  no rule fired");
        }
        for (rule, n) in &st.fired {
            let identity = rules::identity_of(rule).unwrap_or("");
            let _ = writeln!(s, "  {rule:<28} ×{n:<5} {identity}");
        }
    }
    let c = report.input_cost;
    let _ = writeln!(
        s,
        "input graph:     cost {:.4e} ({:.4e} flops, {:.4e} bytes), {} nodes",
        c.total(),
        c.flops,
        c.bytes,
        report.nodes.0
    );
    match report.extracted_cost {
        Some(e) => {
            let _ = writeln!(
                s,
                "extracted graph: cost {:.4e} ({:.4e} flops, {:.4e} bytes){}",
                e.total(),
                e.flops,
                e.bytes,
                if report.changed {
                    format!(
                        ", {} nodes — it wins ({:.1}% cheaper)",
                        report.nodes.1,
                        100.0 * (1.0 - e.total() / c.total().max(f64::MIN_POSITIVE))
                    )
                } else {
                    " — not cheaper, the input graph is kept".to_string()
                }
            );
        }
        None => {
            let _ = writeln!(s, "extracted graph: cyclic choice, the input graph is kept");
        }
    }
    for ch in &report.changes {
        let _ = writeln!(
            s,
            "  `{}` {}: {} → {}{}",
            ch.name,
            ch.ty,
            ch.before,
            ch.after,
            ch.rule.map(|r| format!(" [rule {r}]")).unwrap_or_default()
        );
    }
    s
}
