//! The Routing Transformer smoke test of MODELS.md §5 (acceptance 5): a two-layer language
//! model whose layers mix local heads (blocks of 16 with one block of look-back) and routing
//! heads (shared layer-normalised queries/keys, k-means centroids with EMA updates, balanced
//! top-w routing, causal attention within clusters) learns the synthetic copy task `[s, s]`:
//! the loss on the copied half falls by at least 50 % in 2,000 Adam steps.
//!
//! Prints the loss every 100 steps and the initial/final averages, and writes the loss curve
//! to `<out>/routing_lm_loss.png`. Exits with a failing code when the loss does not halve.
//!
//! Run: `cargo run --release --example routing_lm -- [--steps N] [--seed S] [--out DIR]
//! [--backend compiled|interpreter]`

use clap::Parser;
use flumen::models::realm::Rng;
use flumen::models::routing::model::{LmConfig, RoutingLm, copy_task_batch};
use flumen::plot::{Series, line_chart};
use flumen::{Backend, Result, Session};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Train a 2-layer Routing Transformer LM on a synthetic copy task")]
struct Args {
    /// Training steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Seed of the initializers and of the data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory for the loss curve.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// `compiled` (default) or `interpreter`.
    #[arg(long, default_value = "compiled")]
    backend: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<bool> {
    let backend = match args.backend.as_str() {
        "compiled" => Backend::Compiled,
        "interpreter" => Backend::Interpreter,
        other => {
            return Err(flumen::GraphError::invalid(format!(
                "--backend must be compiled or interpreter, got {other}"
            )));
        }
    };
    let cfg = LmConfig {
        seed: args.seed,
        ..LmConfig::default()
    };
    println!("{cfg:?}");
    let model = RoutingLm::new(&cfg)?;
    let mut sess = Session::with_backend(&model.graph, backend);
    let mut rng = Rng::new(args.seed ^ 0xC0FFEE);
    let mut losses = Vec::with_capacity(args.steps);
    let t0 = Instant::now();
    for step in 0..args.steps {
        let mut next = || rng.next_u64();
        let (t, y, w) = copy_task_batch(cfg.batch, cfg.seq_len, cfg.vocab, &mut next);
        let out = sess.run(
            &[(&model.tokens, t), (&model.targets, y), (&model.weights, w)],
            &[&model.loss, &model.commitment, &model.train],
        )?;
        let loss = f64::from(*out[0].as_f32()?.iter().next().unwrap_or(&f32::NAN));
        losses.push(loss);
        if step % 100 == 0 || step + 1 == args.steps {
            let commit = out[1].to_f64_vec()[0];
            println!(
                "step {step:5}  loss {loss:.4}  commitment {commit:.2e}  ({:.1} s)",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let window = 50.min(losses.len());
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let first = mean(&losses[..window]);
    let last = mean(&losses[losses.len() - window..]);
    let reduction = 1.0 - last / first;
    println!(
        "loss: first {window} steps {first:.4}, last {window} steps {last:.4}: reduced by {:.1} % (target >= 50 %) in {:.1} s",
        100.0 * reduction,
        t0.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&args.out)
        .map_err(|e| flumen::GraphError::invalid(format!("{}: {e}", args.out.display())))?;
    let points: Vec<(f64, f64)> = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as f64, l))
        .collect();
    let png = args.out.join("routing_lm_loss.png");
    line_chart(
        &png,
        "Routing Transformer LM on the copy task",
        "step",
        "cross-entropy (copied half)",
        &[Series {
            label: "training loss",
            points: &points,
        }],
    )?;
    println!("wrote {}", png.display());
    Ok(reduction >= 0.5)
}
