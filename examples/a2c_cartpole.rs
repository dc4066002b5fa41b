//! A2C on CartPole-v0 (MODELS.md §2; `flumen::models::a2c`): trains the A2C tutorial's
//! agent for each seed, prints progress (a bar on a terminal, a line every 100 episodes),
//! reports the episode and env step at which the 100-episode mean return first reaches 195,
//! and writes a reward-curve PNG (the 100-episode running mean return per seed, with the
//! threshold) plus every episode's return as CSV.
//!
//! Run: `cargo run --release --example a2c_cartpole -- [--seeds 0,1,2] [--max-steps 300000]
//! [--keep-going] [--out out] [--backend compiled|interpreter]`
//!
//! By default each seed stops at its first solve; `--keep-going` trains to `--max-steps`
//! (the tutorial's loop has no stop rule) and also reports the last 100-episode mean.

use clap::Parser;
use flumen::models::a2c::{Agent, Config, Solved, window_mean};
use flumen::models::cartpole::REWARD_THRESHOLD;
use flumen::plot::{Series, line_chart};
use flumen::{Backend, GraphError, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Train the A2C tutorial's agent on CartPole-v0 with Flumen")]
struct Args {
    /// Seeds to train (comma-separated), one run each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Environment-step budget per seed.
    #[arg(long, default_value_t = 300_000)]
    max_steps: usize,
    /// Keep training after solving, up to --max-steps.
    #[arg(long)]
    keep_going: bool,
    /// Directory for a2c_cartpole.png and a2c_cartpole.csv.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// The engine that runs the graph.
    #[arg(long, default_value = "compiled", value_parser = ["compiled", "interpreter"])]
    backend: String,
}

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
    solved: Option<Solved>,
    returns: Vec<f64>,
    env_steps: usize,
    secs: f64,
}

fn run(args: Args) -> Result<()> {
    let backend = if args.backend == "interpreter" {
        Backend::Interpreter
    } else {
        Backend::Compiled
    };
    let config = Config::default();
    println!(
        "A2C on CartPole-v0: {}-{} network, batch {}, γ {}, Adam lr {}, seeds {:?}, \
         budget {} env steps, {backend:?} backend",
        config.hidden,
        config.hidden,
        config.batch,
        config.gamma,
        config.optimizer.lr,
        args.seeds,
        args.max_steps
    );
    let mut results = Vec::new();
    for &seed in &args.seeds {
        results.push(train_seed(seed, &config, &args, backend)?);
    }

    println!("\nseed | solved at episode | env steps | 100-ep mean | last-100 mean | steps/s");
    for r in &results {
        let last = window_mean(&r.returns, 100).unwrap_or(f64::NAN);
        match r.solved {
            Some(s) => println!(
                "{:>4} | {:>17} | {:>9} | {:>11.1} | {:>13.1} | {:>7.0}",
                r.seed,
                s.episode,
                s.env_steps,
                s.mean,
                last,
                r.env_steps as f64 / r.secs
            ),
            None => println!(
                "{:>4} | {:>17} | {:>9} | {:>11} | {:>13.1} | {:>7.0}",
                r.seed,
                "not solved",
                r.env_steps,
                "-",
                last,
                r.env_steps as f64 / r.secs
            ),
        }
    }
    let solved = results.iter().filter(|r| r.solved.is_some()).count();
    println!(
        "solved {solved} of {} seeds within {} env steps (criterion: 100-episode mean ≥ {})",
        results.len(),
        args.max_steps,
        REWARD_THRESHOLD
    );

    std::fs::create_dir_all(&args.out).map_err(|e| io_err(&args.out, e))?;
    let png = args.out.join("a2c_cartpole.png");
    // The raw returns are too noisy to read for several seeds: plot the 100-episode running
    // means and the threshold (the raw returns go to the CSV).
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = results
        .iter()
        .map(|r| {
            let mean = (100..=r.returns.len())
                .filter_map(|end| Some((end as f64, window_mean(&r.returns[..end], 100)?)))
                .collect::<Vec<_>>();
            (format!("seed {}: 100-episode mean", r.seed), mean)
        })
        .collect();
    let longest = results.iter().map(|r| r.returns.len()).max().unwrap_or(0);
    curves.push((
        format!("threshold {REWARD_THRESHOLD}"),
        vec![
            (1.0, REWARD_THRESHOLD),
            (longest.max(1) as f64, REWARD_THRESHOLD),
        ],
    ));
    let series: Vec<Series> = curves
        .iter()
        .map(|(label, points)| Series { label, points })
        .collect();
    line_chart(
        &png,
        "A2C on CartPole-v0 (Flumen)",
        "episode",
        "return",
        &series,
    )?;
    let csv = args.out.join("a2c_cartpole.csv");
    let mut f = std::fs::File::create(&csv).map_err(|e| io_err(&csv, e))?;
    writeln!(f, "seed,episode,return").map_err(|e| io_err(&csv, e))?;
    for r in &results {
        for (i, x) in r.returns.iter().enumerate() {
            writeln!(f, "{},{},{}", r.seed, i + 1, x).map_err(|e| io_err(&csv, e))?;
        }
    }
    println!("wrote {} and {}", png.display(), csv.display());
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
    let mut reported = 0;
    let solved = agent.train(args.max_steps, !args.keep_going, |a, losses| {
        bar.set_position(a.env_steps as u64);
        let n = a.episode_returns.len();
        if n / 100 > reported {
            reported = n / 100;
            say(
                &bar,
                format!(
                    "seed {seed}: episode {n:>5}, env step {:>7}, 100-ep mean {:>6.1}, \
                 loss {:.3} (critic {:.3}, actor {:.3}, entropy {:.3})",
                    a.env_steps,
                    window_mean(&a.episode_returns, 100).unwrap_or(f64::NAN),
                    losses.total,
                    losses.critic,
                    losses.actor,
                    losses.entropy
                ),
            );
        }
        bar.set_message(format!(
            "episodes {n}, 100-ep mean {:.1}",
            window_mean(&a.episode_returns, 100).unwrap_or(f64::NAN)
        ));
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    match solved {
        Some(s) => println!(
            "seed {seed}: SOLVED at episode {} (env step {}, 100-episode mean {:.1}); \
             {} env steps in {secs:.1} s ({:.0} steps/s)",
            s.episode,
            s.env_steps,
            s.mean,
            agent.env_steps,
            agent.env_steps as f64 / secs
        ),
        None => println!(
            "seed {seed}: not solved within {} env steps ({} episodes, last 100-ep mean {:.1}); \
             {secs:.1} s ({:.0} steps/s)",
            agent.env_steps,
            agent.episode_returns.len(),
            window_mean(&agent.episode_returns, 100).unwrap_or(f64::NAN),
            agent.env_steps as f64 / secs
        ),
    }
    Ok(SeedResult {
        seed,
        solved,
        returns: agent.episode_returns.clone(),
        env_steps: agent.env_steps,
        secs,
    })
}

/// Print above the bar on a terminal, or plainly when the bar is hidden (output piped).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn io_err(path: &std::path::Path, e: std::io::Error) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}
