//! Filetests for equality saturation: a small graph before and after each ruleset (and the
//! default stages), with the rules that fired, snapshotted with insta
//! (`compiler/tests/snapshots/egraph_filetests__*.snap`).

use flumen_compiler::egraph::{Config, Limits, Report, Ruleset, default_stages, rules, saturate};
use flumen_compiler::{Unit, verify};
use flumen_frontend::nn::attention::{AttentionMask, attention};
use flumen_frontend::{DType, Graph, Tensor};
use std::fmt::Write;

fn describe(unit: &Unit) -> String {
    let names: Vec<String> = unit
        .outputs
        .iter()
        .map(|o| format!("%{}", unit.def.node(*o).name))
        .collect();
    format!("{}outputs: {}\n", unit.def, names.join(", "))
}

/// Deterministic part of a report: rules fired per stage, and the costs.
fn fired(report: &Report) -> String {
    let mut s = String::new();
    for st in &report.stages {
        let rules: Vec<String> = st.fired.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        writeln!(
            s,
            "// stage `{}`: {}",
            st.name,
            if rules.is_empty() {
                "nothing fired".into()
            } else {
                rules.join(", ")
            }
        )
        .unwrap();
    }
    writeln!(
        s,
        "// cost {:.4e} → {}",
        report.input_cost.total(),
        match (report.changed, report.extracted_cost) {
            (true, Some(c)) => format!("{:.4e} (extracted graph wins)", c.total()),
            _ => "input kept".to_string(),
        }
    )
    .unwrap();
    s
}

fn run(g: &Graph, outputs: &[&Tensor], stages: Vec<Ruleset>) -> String {
    let unit = Unit {
        def: g.def(),
        outputs: outputs.iter().map(|t| t.id()).collect(),
    };
    let mut s = describe(&unit);
    let (after, report) = saturate(
        unit,
        &Config {
            stages,
            limits: Limits::default(),
        },
    )
    .unwrap();
    verify(&after.def).unwrap();
    write!(s, "\n{}\n{}", fired(&report), describe(&after)).unwrap();
    s
}

fn only(name: &'static str, rules: Vec<flumen_compiler::egraph::Rule>) -> Vec<Ruleset> {
    vec![Ruleset { name, rules }]
}

#[test]
fn algebra() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4, 3]).unwrap();
    let w = g.placeholder("w", DType::F32, &[4, 5]).unwrap();
    let one = (&x * 1.0).unwrap();
    let tt = one.t().unwrap().t().unwrap();
    let r = tt.reshape(&[2, 6]).unwrap().reshape(&[12]).unwrap();
    let p = tt.t().unwrap().matmul(&w).unwrap();
    let b = g.placeholder("b", DType::F32, &[5]).unwrap();
    let q = (&p + &b.broadcast_to(&[3, 5]).unwrap()).unwrap();
    let d = ((&p * &q).unwrap() + (&p * &p).unwrap()).unwrap();
    insta::assert_snapshot!(run(&g, &[&r, &d], only("algebra", rules::algebra::rules())));
}

#[test]
fn fusion() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[64, 8]).unwrap();
    let b = g.placeholder("b", DType::F32, &[8, 64]).unwrap();
    let s = (&a.matmul(&b).unwrap() * 0.125).unwrap();
    let h = (&s / 4.0).unwrap().relu().unwrap().relu().unwrap();
    let n = (&h + &s.neg().unwrap()).unwrap();
    let sq = (&n * &n).unwrap();
    insta::assert_snapshot!(run(&g, &[&sq], only("fusion", rules::fusion::rules())));
}

#[test]
fn layout() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[3, 5]).unwrap();
    let y = g.placeholder("y", DType::F32, &[3, 5]).unwrap();
    let e = (&x.t().unwrap().exp().unwrap() + &y.t().unwrap()).unwrap();
    let back = e.tanh().unwrap().t().unwrap();
    let stages = vec![Ruleset {
        name: "layout",
        rules: [rules::layout::rules(), rules::algebra::rules()].concat(),
    }];
    insta::assert_snapshot!(run(&g, &[&back], stages));
}

#[test]
fn attention_bigbird() {
    let g = Graph::new();
    let q = g.placeholder("q", DType::F32, &[1, 1, 40, 4]).unwrap();
    let mask = AttentionMask::BigBird {
        block: 4,
        window_blocks: 3,
        global_blocks: 2,
        random_blocks: 1,
        seed: 3,
    };
    let out = attention(&q, &q, &q, &mask).unwrap();
    let stages = vec![Ruleset {
        name: "attention",
        rules: rules::attention::rules(),
    }];
    insta::assert_snapshot!(run(&g, &[&out], stages));
}

#[test]
fn default_stages_on_a_dense_layer() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[8, 16]).unwrap();
    let w = g.placeholder("w", DType::F32, &[32, 16]).unwrap();
    let y = x.matmul(&w.t().unwrap()).unwrap();
    let z = (&(&y * 1.0).unwrap() - 0.0)
        .unwrap()
        .relu()
        .unwrap()
        .t()
        .unwrap()
        .t()
        .unwrap();
    insta::assert_snapshot!(run(&g, &[&z], default_stages()));
}
