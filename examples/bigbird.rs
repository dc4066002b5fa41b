//! A BigBird-style attention layer (B = 1, H = 2, d = 64, blocks of 64, 3 random blocks per
//! row) written the plain way — `softmax(QKᵀ/√d + mask)·V` with `AttentionMask::BigBird` —
//! and compiled twice: as written (dense, an n×n score matrix per head) and after equality
//! saturation, whose attention rule rewrites it to the blockified form of MODELS.md §4a.
//!
//! Prints, for n = 1024 … 16384 (dense only while its score matrices fit `--dense-budget`),
//! the median time per call of each form, the arena each executable plans (peak temporary
//! memory), the max difference between the two, and the saturation time; then the time to
//! saturate and extract a 12-layer BigBird encoder graph (BigBird-base: n = 4096, hidden
//! 768, 12 heads). Draws the block mask of head 0 at n = 4096 to `out/bigbird_mask.png`.
//!
//! ```sh
//! cargo run --release --example bigbird [-- --max-n 16384 --reps 3 --dense-budget-gib 6]
//! ```
//!
//! `--report` prints each executable's step counts and interpreter fallbacks;
//! `--encoder-only` skips the table.

use flumen::compiler::Unit;
use flumen::compiler::egraph::{Config, explain, saturate};
use flumen::nn::attention::{AttentionMask, BigBirdLayout, attention};
use flumen::nn::{Activation, Initializer, dense};
use flumen::{DType, Graph, NodeId, Result, Session, Tensor, Value};
use std::time::{Duration, Instant};

const HEADS: usize = 2;
const D: usize = 64;
const BLOCK: usize = 64;
const RANDOM: usize = 3;

fn mask() -> AttentionMask {
    AttentionMask::BigBird {
        block: BLOCK,
        window_blocks: 3,
        global_blocks: 2,
        random_blocks: RANDOM,
        seed: 0,
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn inputs(n: usize) -> Vec<Value> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    (0..3)
        .map(|_| {
            let data: Vec<f32> = (0..HEADS * n * D)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                })
                .collect();
            Value::from_vec(&[1, HEADS, n, D], data).expect("shape")
        })
        .collect()
}

/// Median time per call, the planned arena and the output of `out` on `graph`.
fn measure(
    graph: &Graph,
    out: NodeId,
    values: &[Value],
    reps: usize,
) -> Result<(Duration, usize, Vec<f64>)> {
    let t = |name: &str| graph.get(name).expect("placeholder");
    let (q, k, v) = (t("q"), t("k"), t("v"));
    let out: Tensor = graph.tensor(out).expect("output");
    let mut sess = Session::new(graph);
    let feeds = [
        (&q, values[0].clone()),
        (&k, values[1].clone()),
        (&v, values[2].clone()),
    ];
    let report = sess
        .compile_report(&[&q, &k, &v], &[&out])?
        .expect("compiled backend");
    if std::env::args().any(|a| a == "--report") {
        eprintln!(
            "[n = {}] {} steps, {} kernels, interpreter steps: {}",
            q.shape()[2],
            report.steps,
            report.kernels,
            report.interpreted.join(", ")
        );
    }
    let first = sess.run(&feeds, &[&out])?.remove(0).to_f64_vec();
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            sess.run(&feeds, &[&out]).map(|_| t.elapsed())
        })
        .collect::<Result<_>>()?;
    times.sort();
    Ok((times[times.len() / 2], report.arena_bytes.0, first))
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() -> Result<()> {
    let max_n = arg("--max-n", 16384.0) as usize;
    let reps = arg("--reps", 3.0) as usize;
    let budget = arg("--dense-budget-gib", 6.0) * (1u64 << 30) as f64;
    println!(
        "BigBird attention layer: B=1, H={HEADS}, d={D}, block {BLOCK}, {RANDOM} random blocks per row, f32\n"
    );
    println!(
        "{:>6} | {:>11} {:>11} | {:>11} {:>11} | {:>8} | {:>9} | {:>10}",
        "n",
        "dense ms",
        "dense MiB",
        "blocked ms",
        "blocked MiB",
        "speed-up",
        "max diff",
        "saturate ms"
    );
    let mut n = 1024;
    while n <= max_n && !std::env::args().any(|a| a == "--encoder-only") {
        let g = Graph::new();
        let q = g.placeholder("q", DType::F32, &[1, HEADS, n, D])?;
        let k = g.placeholder("k", DType::F32, &[1, HEADS, n, D])?;
        let v = g.placeholder("v", DType::F32, &[1, HEADS, n, D])?;
        let out = attention(&q, &k, &v, &mask())?;
        let values = inputs(n);
        // Dense: scores, logits and probabilities are n×n per head.
        let dense_bytes = 3.0 * (HEADS * n * n * 4) as f64;
        let dense = if dense_bytes <= budget {
            Some(measure(&g, out.id(), &values, reps)?)
        } else {
            None
        };
        let t = Instant::now();
        let (after, report) = saturate(
            Unit {
                def: g.def(),
                outputs: vec![out.id()],
            },
            &Config::default(),
        )?;
        let sat = t.elapsed();
        if !report.changed {
            println!("{}", explain(&report));
        }
        let blocked_graph = Graph::from_def(after.def);
        let blocked = measure(&blocked_graph, after.outputs[0], &values, reps)?;
        let diff = dense.as_ref().map(|d| {
            d.2.iter()
                .zip(&blocked.2)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:>6} | {:>11} {:>11} | {:>11.2} {:>11.1} | {:>8} | {:>9} | {:>10.2}",
            n,
            dense
                .as_ref()
                .map_or("—".into(), |d| format!("{:.2}", ms(d.0))),
            dense
                .as_ref()
                .map_or("(too big)".into(), |d| format!("{:.1}", mib(d.1))),
            ms(blocked.0),
            mib(blocked.1),
            dense.as_ref().map_or("—".into(), |d| format!(
                "{:.2}×",
                d.0.as_secs_f64() / blocked.0.as_secs_f64()
            )),
            diff.map_or("—".into(), |x| format!("{x:.1e}")),
            ms(sat)
        );
        n *= 2;
    }

    // The block mask of head 0 at n = 4096.
    let layout = BigBirdLayout::generate(HEADS, 4096, BLOCK, 3, 2, RANDOM, 0)?;
    let nb = layout.num_blocks;
    let bm = layout.block_mask();
    let img =
        ndarray::Array2::from_shape_fn((nb, nb), |(i, j)| if bm[i * nb + j] { 1.0 } else { 0.0 });
    std::fs::create_dir_all("out").map_err(|e| flumen::GraphError::invalid(e.to_string()))?;
    flumen::plot::matrix_image("out/bigbird_mask.png", &img, 8)?;
    println!("\nblock mask (head 0, n = 4096, {nb}×{nb} blocks) → out/bigbird_mask.png");

    // Saturation + extraction of a 12-layer BigBird encoder graph.
    let (g, out, nodes) = encoder(12, 4096, 768, 12)?;
    let t = Instant::now();
    let (_, report) = saturate(
        Unit {
            def: g.def(),
            outputs: vec![out],
        },
        &Config::default(),
    )?;
    let total = t.elapsed();
    println!(
        "\n12-layer BigBird encoder graph ({nodes} nodes): saturation + extraction {:.1} ms (target ≤ 1000 ms)",
        total.as_secs_f64() * 1e3
    );
    print!("{}", explain(&report));
    Ok(())
}

/// A BigBird-base style encoder: per layer Q/K/V projections, heads, BigBird attention,
/// output projection, residual + layer norm, GELU feed-forward, residual + layer norm.
fn encoder(layers: usize, n: usize, hidden: usize, heads: usize) -> Result<(Graph, NodeId, usize)> {
    let g = Graph::new();
    g.set_seed(1);
    let d = hidden / heads;
    let mut x = g.placeholder("x", DType::F32, &[n, hidden])?;
    let init = Initializer::GlorotUniform;
    let zeros = Initializer::Zeros;
    for l in 0..layers {
        let heads_of = |t: &Tensor| -> Result<Tensor> {
            t.reshape(&[1, n as i64, heads as i64, d as i64])?
                .transpose(&[0, 2, 1, 3])
        };
        let q = heads_of(&dense(
            &format!("l{l}/q"),
            &x,
            hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?)?;
        let k = heads_of(&dense(
            &format!("l{l}/k"),
            &x,
            hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?)?;
        let v = heads_of(&dense(
            &format!("l{l}/v"),
            &x,
            hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?)?;
        let a = attention(&q, &k, &v, &mask())?
            .transpose(&[0, 2, 1, 3])?
            .reshape(&[n as i64, hidden as i64])?;
        let a = dense(
            &format!("l{l}/o"),
            &a,
            hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?;
        let h = (&x + &a)?.layer_norm(1e-12)?;
        let f = dense(
            &format!("l{l}/ff1"),
            &h,
            4 * hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?
        .gelu()?;
        let f = dense(
            &format!("l{l}/ff2"),
            &f,
            hidden,
            Activation::Linear,
            &init,
            &zeros,
        )?;
        x = (&h + &f)?.layer_norm(1e-12)?;
    }
    let nodes = g.len();
    Ok((g, x.id(), nodes))
}
