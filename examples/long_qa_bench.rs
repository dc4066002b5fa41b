//! Benchmarks of the long-form QA models (issue #10): routing attention against dense
//! attention at n = 4096 and 8192 (time and memory), and exact blocked MIPS throughput over
//! N = 10⁶ documents of d = 128 with k = 5 (compare `benches/peers/mips_numpy.py`, which
//! generates the same data).
//!
//! Every configuration runs in a child process of its own so that its peak resident memory
//! (`VmHWM`) is its own; the parent prints one Markdown table. Times are medians over
//! `--rounds` runs after one warm-up run (the first run compiles). Memory: the compiled
//! executable's planned arena (and what it would be without buffer reuse) and the process's
//! peak RSS, which includes the inputs.
//!
//! Attention: B = 1, H = 1, d = 64, shared queries/keys with the causal mask and self
//! exclusion (the LM setting); routing uses k = n/64 clusters of w = 64 (k = √n at 4096).
//! Data: uniform values from a stateless SplitMix64 of the element index (the same
//! generator as the NumPy peer: docs seed 1, queries seed 2).
//!
//! Run: `cargo run --release --example long_qa_bench -- [--rounds R] [--quick]
//! [--only CONFIG] [--queries B] [--block N] [--chunk C]`

use clap::Parser;
use flumen::models::realm::{Mips, mips_top_k};
use flumen::models::routing::{Mask, balanced_routing, dense_attention, routed_attention};
use flumen::{DType, Graph, GraphError, Result, Session, Tensor, Value};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Routing vs dense attention and blocked MIPS benchmarks")]
struct Args {
    /// Timed runs per configuration (median reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Small sizes (n = 1024, N = 10⁵) for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Run one configuration in this process and print its RESULT line.
    #[arg(long)]
    only: Option<String>,
    /// Queries per MIPS batch.
    #[arg(long, default_value_t = 256)]
    queries: usize,
    /// Documents per MIPS block.
    #[arg(long, default_value_t = Mips::default().block)]
    block: usize,
    /// Columns per MIPS chunk.
    #[arg(long, default_value_t = Mips::default().chunk)]
    chunk: usize,
}

/// Uniform values on `[-0.5, 0.5)`: element `i` is the top 24 bits of
/// `splitmix64(seed + (i + 1)·γ)` scaled by 2⁻²⁴, minus ½ (exact in f32).
pub fn uniform_data(seed: u64, len: usize) -> Vec<f32> {
    (0..len as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 * (1.0 / 16_777_216.0) - 0.5
        })
        .collect()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Compile, warm up, time `rounds` runs; returns (median seconds, arena MiB planned,
/// arena MiB without reuse, the last outputs).
fn measure(
    g: &Graph,
    feeds: &[(&Tensor, Value)],
    fetches: &[&Tensor],
    rounds: usize,
) -> Result<(f64, f64, f64, Vec<Value>)> {
    let mut sess = Session::new(g);
    let feed_refs: Vec<&Tensor> = feeds.iter().map(|(t, _)| *t).collect();
    let report = sess.compile_report(&feed_refs, fetches)?;
    let (planned, unshared) = report.map_or((0, 0), |r| r.arena_bytes);
    let mut out = sess.run(feeds, fetches)?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        out = sess.run(feeds, fetches)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    Ok((median(times), mib(planned), mib(unshared), out))
}

fn attention(kind: &str, n: usize, rounds: usize) -> Result<String> {
    let (h, d, w) = (1, 64, 64);
    let g = Graph::new();
    let q = g.placeholder("q", DType::F32, &[1, h, n, d])?;
    let v = g.placeholder("v", DType::F32, &[1, h, n, d])?;
    let mask = Mask {
        causal: true,
        exclude_self: true,
    };
    let (out, scores) = if kind == "dense" {
        let o = dense_attention(&q, &q, &v, mask, None)?;
        (o, n * n)
    } else {
        let k = n / w;
        let mu = g.constant(
            Value::from_vec(&[h, k, d], uniform_data(3, h * k * d))?
                .as_f32()?
                .clone(),
        )?;
        let mu = mu.l2_normalize(-1, 1e-12)?;
        let unit = q.l2_normalize(-1, 1e-12)?;
        let idx = balanced_routing(&unit, &mu, w)?;
        let r = routed_attention(&q, &q, &v, &idx, &idx, mask)?;
        (r.output, r.scores.numel())
    };
    let qv = Value::from_vec(&[1, h, n, d], uniform_data(4, h * n * d))?;
    let vv = Value::from_vec(&[1, h, n, d], uniform_data(5, h * n * d))?;
    let (t, planned, unshared, res) = measure(&g, &[(&q, qv), (&v, vv)], &[&out], rounds)?;
    let finite = res[0].to_f64_vec().iter().all(|x| x.is_finite());
    Ok(format!(
        "{{\"config\":\"attention {kind} n={n}\",\"median_ms\":{:.3},\"arena_mib\":{planned:.1},\"arena_no_reuse_mib\":{unshared:.1},\"peak_rss_mib\":{:.1},\"score_entries\":{scores},\"finite\":{finite}}}",
        t * 1e3,
        peak_rss_mib()
    ))
}

fn mips(n: usize, b: usize, opts: Mips, rounds: usize) -> Result<String> {
    let (d, k) = (128, 5);
    let g = Graph::new();
    let q = g.placeholder("queries", DType::F32, &[b, d])?;
    let docs = g.placeholder("docs", DType::F32, &[n, d])?;
    let top = mips_top_k(&q, &docs, k, opts)?;
    let dv = Value::from_vec(&[n, d], uniform_data(1, n * d))?;
    let qv = Value::from_vec(&[b, d], uniform_data(2, b * d))?;
    let (t, planned, unshared, res) = measure(
        &g,
        &[(&q, qv), (&docs, dv)],
        &[&top.indices, &top.scores],
        rounds,
    )?;
    // A checksum of the indices, comparable with the NumPy peer's.
    let idx = res[0].as_i64()?;
    let checksum: i64 = idx
        .iter()
        .enumerate()
        .map(|(i, &j)| j.wrapping_mul(i as i64 + 1))
        .fold(0, i64::wrapping_add);
    Ok(format!(
        "{{\"config\":\"mips N={n} d={d} k={k} B={b} block={} chunk={}\",\"median_ms\":{:.3},\"queries_per_s\":{:.1},\"arena_mib\":{planned:.1},\"arena_no_reuse_mib\":{unshared:.1},\"peak_rss_mib\":{:.1},\"index_checksum\":{checksum},\"first_row\":{:?}}}",
        opts.block,
        opts.chunk,
        t * 1e3,
        b as f64 / t,
        peak_rss_mib(),
        idx.outer_iter()
            .next()
            .map(|r| r.iter().copied().collect::<Vec<i64>>())
            .unwrap_or_default()
    ))
}

fn run_one(args: &Args, config: &str) -> Result<String> {
    let opts = Mips {
        block: args.block,
        chunk: args.chunk,
    };
    let parts: Vec<&str> = config.split('-').collect();
    match parts.as_slice() {
        ["attention", kind @ ("dense" | "routing"), n] => {
            let n = n
                .parse()
                .map_err(|_| GraphError::invalid(format!("bad n in {config}")))?;
            attention(kind, n, args.rounds)
        }
        ["mips", n] => {
            let n = n
                .parse()
                .map_err(|_| GraphError::invalid(format!("bad N in {config}")))?;
            mips(n, args.queries, opts, args.rounds)
        }
        _ => Err(GraphError::invalid(format!(
            "unknown configuration {config} (attention-dense-N, attention-routing-N, mips-N)"
        ))),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(config) = &args.only {
        return match run_one(&args, config) {
            Ok(line) => {
                println!("RESULT {line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let sizes: &[usize] = if args.quick { &[1024] } else { &[4096, 8192] };
    let mut configs: Vec<String> = sizes
        .iter()
        .flat_map(|n| {
            [
                format!("attention-dense-{n}"),
                format!("attention-routing-{n}"),
            ]
        })
        .collect();
    configs.push(format!(
        "mips-{}",
        if args.quick { 100_000 } else { 1_000_000 }
    ));
    let exe = std::env::current_exe().expect("the running executable");
    let mut failed = false;
    for config in configs {
        let out = Command::new(&exe)
            .args(["--only", &config, "--rounds", &args.rounds.to_string()])
            .args(["--queries", &args.queries.to_string()])
            .args(["--block", &args.block.to_string()])
            .args(["--chunk", &args.chunk.to_string()])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                for line in text.lines().filter(|l| l.starts_with("RESULT ")) {
                    println!("{line}");
                }
            }
            Ok(o) => {
                failed = true;
                eprintln!("{config}: {}", String::from_utf8_lossy(&o.stderr));
            }
            Err(e) => {
                failed = true;
                eprintln!("{config}: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
