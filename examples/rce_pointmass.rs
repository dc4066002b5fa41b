//! RCE on the 2-D point mass (MODELS.md §7; `flumen::models::rce`): the agent learns to reach
//! a goal it is never told about from 200 examples of successful states. For each seed it
//! trains for `--max-steps` environment steps (one gradient step per environment step after
//! the initial random steps), evaluates the greedy policy on 30 episodes every `--eval-every`
//! steps, and reports the first evaluation reaching 0.9. It writes a success-rate curve
//! (`rce_success.png`, all seeds) and, per seed, a heat map of the learned classifier
//! `min(C₁, C₂)(s, π(s))` over the plane (`rce_classifier_seed<N>.png`).
//!
//! Run: `cargo run --release --example rce_pointmass -- [--seeds 0,1,2] [--max-steps 50000]
//! [--eval-every 10000] [--hidden 64] [--initial-random-steps 1000] [--future original|clamped]
//! [--out out]
//! [--backend compiled|interpreter]`

use clap::Parser;
use flumen::models::rce::{Agent, Config, FutureSampling, GOAL, GOAL_RADIUS};
use flumen::plot::{Series, heatmap, line_chart};
use flumen::{Backend, DType, GraphError, Result, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Train RCE (recursive classification of examples) on a 2-D point mass")]
struct Args {
    /// Seeds to train (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Environment steps per seed.
    #[arg(long, default_value_t = 50_000)]
    max_steps: usize,
    /// Evaluate every this many environment steps.
    #[arg(long, default_value_t = 10_000)]
    eval_every: usize,
    /// Evaluation episodes (greedy policy).
    #[arg(long, default_value_t = 30)]
    eval_episodes: usize,
    /// Hidden units of the actor's and critics' two layers.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Uniformly random steps before learning starts (the paper: 10000).
    #[arg(long, default_value_t = 1_000)]
    initial_random_steps: usize,
    /// Directory for the PNGs.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// The n-step future state: `original` (frame n−1 of a 10-frame window, which may cross
    /// into the next episode, as google-research/rce) or `clamped` (s_{t+n} clamped to the
    /// episode's end, MODELS.md's wording).
    #[arg(long, default_value = "original", value_parser = ["original", "clamped"])]
    future: String,
    /// The engine that runs the graph.
    #[arg(long, default_value = "compiled", value_parser = ["compiled", "interpreter"])]
    backend: String,
}

/// Grid points per axis of the classifier heat map.
const GRID: usize = 41;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct SeedResult {
    seed: u64,
    curve: Vec<(f64, f64)>,
    first_success: Option<usize>,
    inside: f64,
    far: f64,
    secs: f64,
}

fn run(args: Args) -> Result<()> {
    if args.eval_every == 0 {
        return Err(GraphError::invalid("--eval-every must be positive"));
    }
    let backend = if args.backend == "interpreter" {
        Backend::Interpreter
    } else {
        Backend::Compiled
    };
    let config = Config {
        hidden: args.hidden,
        initial_random_steps: args.initial_random_steps,
        future: if args.future == "clamped" {
            FutureSampling::ClampedToEpisode
        } else {
            FutureSampling::AsOriginal
        },
        ..Config::default()
    };
    println!(
        "RCE on the point mass: hidden ({h},{h}), batch {}, γ {}, n-step {}, τ {}, {} initial \
         random steps, future state {:?}, seeds {:?}, {} env steps, eval {} greedy episodes \
         every {} steps, {backend:?} backend",
        config.batch,
        config.gamma,
        config.n_step,
        config.tau,
        config.initial_random_steps,
        config.future,
        args.seeds,
        args.max_steps,
        args.eval_episodes,
        args.eval_every,
        h = config.hidden,
    );
    std::fs::create_dir_all(&args.out).map_err(|e| GraphError::Io {
        path: args.out.display().to_string(),
        msg: e.to_string(),
    })?;
    let mut results = Vec::new();
    for &seed in &args.seeds {
        results.push(train_seed(seed, &config, &args, backend)?);
    }

    println!(
        "\nseed | first eval ≥ 0.9 (env step) | final success | C(goal) | C(-0.5,-0.5) | time"
    );
    for r in &results {
        println!(
            "{:>4} | {:>27} | {:>13.2} | {:>7.3} | {:>12.3} | {:>5.0} s",
            r.seed,
            r.first_success
                .map_or("not reached".to_string(), |s| s.to_string()),
            r.curve.last().map_or(f64::NAN, |p| p.1),
            r.inside,
            r.far,
            r.secs
        );
    }
    let reached = results.iter().filter(|r| r.first_success.is_some()).count();
    println!(
        "{reached} of {} seeds reached greedy success ≥ 0.9 within {} env steps",
        results.len(),
        args.max_steps
    );
    let labels: Vec<String> = results.iter().map(|r| format!("seed {}", r.seed)).collect();
    let series: Vec<Series> = results
        .iter()
        .zip(&labels)
        .map(|(r, label)| Series {
            label,
            points: &r.curve,
        })
        .collect();
    let png = args.out.join("rce_success.png");
    line_chart(
        &png,
        "RCE on the point mass: greedy success rate",
        "env steps",
        "success rate",
        &series,
    )?;
    println!("wrote {}", png.display());
    Ok(())
}

fn train_seed(seed: u64, config: &Config, args: &Args, backend: Backend) -> Result<SeedResult> {
    let start = Instant::now();
    let mut agent = Agent::new(config.clone(), seed, backend)?;
    let bar = indicatif::ProgressBar::new(args.max_steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("seed {seed}"));
    let mut curve = vec![(0.0, agent.evaluate(args.eval_episodes, 0)?.success)];
    let mut first_success = None;
    let mut recent = None;
    while agent.env_steps < args.max_steps {
        if let Some(stats) = agent.iterate()? {
            recent = Some(stats);
        }
        if agent.env_steps % 500 == 0 {
            bar.set_position(agent.env_steps as u64);
            if let Some(s) = recent {
                bar.set_message(format!(
                    "critic {:.4}, actor {:.4}, C(success) {:.3}, C(replay) {:.3}",
                    s.critic_loss, s.actor_loss, s.success_score, s.replay_score
                ));
            }
        }
        if agent.env_steps % args.eval_every == 0 {
            let eval = agent.evaluate(args.eval_episodes, agent.env_steps as u64)?;
            let rate = eval.success;
            curve.push((agent.env_steps as f64, rate));
            if rate >= 0.9 && first_success.is_none() {
                first_success = Some(agent.env_steps);
            }
            let line = format!(
                "seed {seed}: env step {:>6}: greedy success {rate:.2} (entered the goal disk \
                 {:.2}, mean final distance {:.3}){}",
                agent.env_steps,
                eval.reached,
                eval.final_distance,
                recent.map_or(String::new(), |s| format!(
                    " (critic loss {:.4}, actor loss {:.4}, C on success examples {:.3}, \
                     on replay {:.3})",
                    s.critic_loss, s.actor_loss, s.success_score, s.replay_score
                ))
            );
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
        }
    }
    bar.finish_and_clear();

    // The classifier over the plane.
    let grid =
        agent
            .model
            .graph
            .placeholder(&format!("grid_{seed}"), DType::F32, &[GRID * GRID, 2])?;
    let c = agent.model.classifier_on(&grid)?;
    let coord = |k: usize| -1.0 + 2.0 * k as f64 / (GRID - 1) as f64;
    let mut points = Vec::with_capacity(GRID * GRID * 2);
    for i in 0..GRID {
        for j in 0..GRID {
            points.push(coord(j) as f32);
            points.push(coord(i) as f32);
        }
    }
    let out = agent.sess.run(
        &[(&grid, Value::from_vec(&[GRID * GRID, 2], points)?)],
        &[&c],
    )?;
    let values: Vec<f64> = out[0].as_f32()?.iter().map(|&x| x as f64).collect();
    let map = ndarray::Array2::from_shape_vec((GRID, GRID), values)
        .map_err(|e| GraphError::invalid(format!("heat map shape: {e}")))?;
    let at = |x: f64, y: f64| {
        let k = |v: f64| (((v + 1.0) / 2.0 * (GRID - 1) as f64).round() as usize).min(GRID - 1);
        map[[k(y), k(x)]]
    };
    let (inside, far) = (at(GOAL[0], GOAL[1]), at(-0.5, -0.5));
    let png = args.out.join(format!("rce_classifier_seed{seed}.png"));
    heatmap(
        &png,
        &format!(
            "seed {seed}: min C(s, pi(s)), goal ({}, {}) r {}",
            GOAL[0], GOAL[1], GOAL_RADIUS
        ),
        &map,
        (-1.0, 1.0),
        (-1.0, 1.0),
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "seed {seed}: {} env steps, {} gradient steps in {secs:.1} s; final greedy success \
         {:.2}; classifier at the goal {inside:.3}, at (-0.5, -0.5) {far:.3}; wrote {}",
        agent.env_steps,
        agent.grad_steps,
        curve.last().map_or(f64::NAN, |p| p.1),
        png.display()
    );
    Ok(SeedResult {
        seed,
        curve,
        first_success,
        inside,
        far,
        secs,
    })
}
