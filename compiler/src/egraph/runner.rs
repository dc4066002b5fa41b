//! Staged saturation: rulesets run one after another, each until it saturates or hits its
//! node, iteration or time limit, with a report per stage (time, size, rules fired).
//!
//! One iteration searches every e-node of every class with every rule of the stage (a
//! rule is a plain function of the e-graph, the class and the node, returning terms equal
//! to the class), then adds the terms and unions them with their classes, then rebuilds.
//! Before each union the term's type (from the analysis) must equal the class's: a
//! mismatch is a bug in the rule and fails the saturation with the rule's name.

use super::lang::{EG, ENode, Sym, Term, add_term};
use egg::Id;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A rewrite rule: a named identity.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Unique name (`mul-one`).
    pub name: &'static str,
    /// The identity it states (`x · 1 = x`).
    pub identity: &'static str,
    /// Terms equal to the class `id`, found by looking at its node `node`.
    pub apply: fn(&EG, Id, &ENode) -> Vec<Term>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.identity)
    }
}

/// A named list of rules, run as one stage.
#[derive(Clone, Debug)]
pub struct Ruleset {
    /// Stage name.
    pub name: &'static str,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// Limits of one stage.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Stop when the e-graph holds more e-nodes than this.
    pub nodes: usize,
    /// Stop after this many iterations.
    pub iterations: usize,
    /// Stop when the stage has run this long.
    pub time: Duration,
    /// At most this many applications per rule and iteration.
    pub matches_per_rule: usize,
    /// Time for the extractor's local improvement (after all stages).
    pub improve_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nodes: 20_000,
            iterations: 8,
            time: Duration::from_millis(500),
            matches_per_rule: 2_000,
            improve_time: Duration::from_millis(100),
        }
    }
}

/// Why a stage stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// No rule changed the e-graph.
    Saturated,
    /// The iteration limit.
    Iterations,
    /// The node limit.
    Nodes,
    /// The time limit.
    Time,
}

/// What one stage did.
#[derive(Clone, Debug)]
pub struct StageReport {
    /// Stage name.
    pub name: &'static str,
    /// Iterations run.
    pub iterations: usize,
    /// Why it stopped.
    pub stop: Stop,
    /// Wall time.
    pub time: Duration,
    /// E-nodes and e-classes afterwards.
    pub nodes: usize,
    /// E-classes afterwards.
    pub classes: usize,
    /// Unions that changed the e-graph, per rule (rules that never fired are absent).
    pub fired: BTreeMap<&'static str, usize>,
}

/// Which rule first produced each e-node a rule added (for `explain`).
pub type Provenance = HashMap<ENode, &'static str>;

/// Run one stage on `eg`.
pub fn run_stage(
    eg: &mut EG,
    set: &Ruleset,
    limits: &Limits,
    provenance: &mut Provenance,
) -> Result<StageReport, String> {
    let start = Instant::now();
    let mut report = StageReport {
        name: set.name,
        iterations: 0,
        stop: Stop::Saturated,
        time: Duration::ZERO,
        nodes: 0,
        classes: 0,
        fired: BTreeMap::new(),
    };
    loop {
        if report.iterations >= limits.iterations {
            report.stop = Stop::Iterations;
            break;
        }
        report.iterations += 1;
        // Search (read-only), in class-id order for determinism.
        let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
        ids.sort();
        let mut pending: Vec<(usize, Id, Term)> = Vec::new();
        let mut per_rule = vec![0usize; set.rules.len()];
        for &id in &ids {
            for node in &eg[id].nodes {
                for (ri, rule) in set.rules.iter().enumerate() {
                    if per_rule[ri] >= limits.matches_per_rule {
                        continue;
                    }
                    for t in (rule.apply)(eg, id, node) {
                        per_rule[ri] += 1;
                        pending.push((ri, id, t));
                    }
                }
            }
        }
        // Apply.
        let size_before = eg.total_number_of_nodes();
        let mut changed = false;
        let mut hit_node_limit = false;
        for (ri, id, term) in pending {
            let rule = &set.rules[ri];
            let n_before = eg.total_number_of_nodes();
            let new = add_term(eg, &term).map_err(|e| {
                format!(
                    "rule `{}` ({}) built a bad term: {e}",
                    rule.name, rule.identity
                )
            })?;
            if eg.total_number_of_nodes() > n_before {
                let node = eg[new].nodes.last().cloned();
                if let Some(node) = node {
                    provenance.entry(node).or_insert(rule.name);
                }
            }
            let (want, got) = (&eg[id].data.ty, &eg[new].data.ty);
            if want != got {
                return Err(format!(
                    "rule `{}` ({}) equated a value of type {want} with one of type {got}: a bug in the rule",
                    rule.name, rule.identity
                ));
            }
            if eg.union(id, new) {
                *report.fired.entry(rule.name).or_default() += 1;
                changed = true;
            }
            if eg.total_number_of_nodes() > limits.nodes {
                hit_node_limit = true;
                break;
            }
        }
        eg.rebuild();
        if !eg.analysis.errors.is_empty() {
            return Err(format!(
                "stage `{}`: {}",
                set.name,
                eg.analysis.errors.join("; ")
            ));
        }
        changed |= eg.total_number_of_nodes() > size_before;
        if hit_node_limit {
            report.stop = Stop::Nodes;
            break;
        }
        if !changed {
            report.stop = Stop::Saturated;
            break;
        }
        if start.elapsed() > limits.time {
            report.stop = Stop::Time;
            break;
        }
    }
    report.time = start.elapsed();
    report.nodes = eg.total_number_of_nodes();
    report.classes = eg.number_of_classes();
    Ok(report)
}

/// The op of an e-node, if it is an op.
pub fn op_of<'a>(eg: &'a EG, node: &ENode) -> Option<&'a flumen_frontend::Op> {
    eg.analysis.op(node.sym)
}

/// Whether the node is a leaf (pinned source node).
pub fn is_leaf(node: &ENode) -> bool {
    matches!(node.sym, Sym::Leaf(_))
}
