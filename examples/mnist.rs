//! The TensorFlow 2 tutorial's MNIST network (MODELS.md §1b) trained end to end:
//! 784 → 300 ReLU → 10 logits, `W ~ N(0, 0.03²)`, `b ~ N(0, 1)`, one-hot labels,
//! softmax cross-entropy averaged over the batch, Adam with Keras' defaults, batches of 100
//! drawn with replacement, `len(train) / 100` batches per epoch, 10 epochs. Each epoch
//! prints the average training loss and the accuracy on the whole test set.
//!
//! By default it trains on the embedded 5,000-image subset (4,000 train / 1,000 test, 40
//! batches per epoch); `--data-dir DIR` trains on the real IDX files in `DIR` (60,000 /
//! 10,000, 600 batches per epoch). At the end it writes to `--out` (default `out/`):
//! `mnist.safetensors` (the trained variables), `mnist.flumen` (the graph as text IR) and
//! `mnist.dot` (Graphviz).
//!
//! While training it logs to `--logdir` (default `runs/`), in `<logdir>/<run name>/`: a
//! TensorBoard event file with the graph and the scalars `train/loss` (every batch),
//! `train/epoch_loss`, `test/accuracy` and `train/learning_rate` (every epoch), flushed
//! after each epoch (`tensorboard --logdir runs` shows them live), and at the end
//! `curves.png`, the loss and accuracy curves.
//!
//! Run: `cargo run --release --example mnist -- [--data-dir DIR] [--epochs N] [--seed S]
//! [--out DIR] [--backend compiled|interpreter] [--logdir DIR] [--run-name NAME]`
//!
//! The model-building and training functions are public so `tests/mnist_training.rs` can
//! include this file as a module and train the same network.

use clap::Parser;
use flumen::data::mnist::{self, Mnist, Split};
use flumen::nn::{Initializer, Reduction};
use flumen::plot::{self, Series};
use flumen::tensorboard::SummaryWriter;
use flumen::train::{Adam, Optimizer};
use flumen::{Backend, DType, Graph, GraphError, Result, Session, Tensor, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The batch size of the tutorial.
pub const BATCH: usize = 100;
/// Pixels per image (28 × 28).
pub const PIXELS: usize = 784;
/// Hidden units.
pub const HIDDEN: usize = 300;
/// Classes.
pub const CLASSES: usize = 10;
/// The default seed (of the initializers and of the batch sampler).
pub const DEFAULT_SEED: u64 = 0;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Train the TF2 tutorial's MNIST network (784-300-10) with Flumen")]
pub struct Args {
    /// Train on the IDX files in this directory (train-images-idx3-ubyte, ... optionally
    /// gzipped) instead of the embedded 5,000-image subset.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the weight initializers and of the batch sampler.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Directory for mnist.safetensors, mnist.flumen and mnist.dot.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// The engine that runs the graph.
    #[arg(long, value_enum, default_value_t = BackendArg::Compiled)]
    pub backend: BackendArg,
    /// Directory of TensorBoard runs: events and curves.png go to `<logdir>/<run name>/`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub logdir: PathBuf,
    /// The run's directory name under `--logdir` [default: mnist-<UTC date>-<time>].
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
}

/// `mnist-YYYYMMDD-HHMMSS` (UTC) for the current time: a new TensorBoard run per training.
pub fn default_run_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "mnist-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `--backend`: a [`Backend`] on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// Compiled native code (the default).
    Compiled,
    /// The reference interpreter (the semantics oracle; slower).
    Interpreter,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Compiled => Backend::Compiled,
            BackendArg::Interpreter => Backend::Interpreter,
        }
    }
}

/// The network's variables: `layer1/{W,b}` (784 → 300) and `layer2/{W,b}` (300 → 10).
pub struct Params {
    /// `[784, 300]`
    pub w1: Tensor,
    /// `[300]`
    pub b1: Tensor,
    /// `[300, 10]`
    pub w2: Tensor,
    /// `[10]`
    pub b2: Tensor,
}

impl Params {
    /// Create the variables in `g` with the tutorial's initialisation: weights
    /// `N(0, 0.03²)`, biases `N(0, 1)`; the four initializers' seeds derive from `seed`.
    pub fn new(g: &Graph, seed: u64) -> Result<Params> {
        let weight = Initializer::Normal {
            mean: 0.0,
            stddev: 0.03,
        };
        let bias = Initializer::Normal {
            mean: 0.0,
            stddev: 1.0,
        };
        let seed_of = |k: u64| Some(seed.wrapping_mul(4).wrapping_add(k));
        let var = |scope: &str, name: &str, init: &Initializer, shape: &[usize], k: u64| {
            let _scope = g.scope(scope);
            let initial = init.build(g, shape, DType::F32, seed_of(k))?;
            g.variable(name, &initial)
        };
        Ok(Params {
            w1: var("layer1", "W", &weight, &[PIXELS, HIDDEN], 0)?,
            b1: var("layer1", "b", &bias, &[HIDDEN], 1)?,
            w2: var("layer2", "W", &weight, &[HIDDEN, CLASSES], 2)?,
            b2: var("layer2", "b", &bias, &[CLASSES], 3)?,
        })
    }

    /// The logits `relu(x·W1 + b1)·W2 + b2` of images `x` (`[n, 784]` f32) → `[n, 10]`.
    /// Applying it to several placeholders shares the variables.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = (x.matmul(&self.w1)? + &self.b1)?.relu()?;
        hidden.matmul(&self.w2)? + &self.b2
    }
}

/// The whole graph: a training path on batches and an evaluation path on the test set,
/// sharing the variables.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// The variables.
    pub params: Params,
    /// Training images `[batch, 784]` f32.
    pub x: Tensor,
    /// Training labels `[batch]` i64.
    pub y: Tensor,
    /// The mean softmax cross-entropy of the batch (a scalar).
    pub loss: Tensor,
    /// One Adam step on the batch.
    pub train: Tensor,
    /// Test images `[test_size, 784]` f32.
    pub x_test: Tensor,
    /// Test labels `[test_size]` i64.
    pub y_test: Tensor,
    /// Logits of the test images `[test_size, 10]`.
    pub test_logits: Tensor,
    /// The fraction of test images whose argmax logit is their label (a scalar).
    pub accuracy: Tensor,
}

impl Model {
    /// Build the graph for training batches of `batch` images and evaluating `test_size`
    /// images at once.
    pub fn new(batch: usize, test_size: usize, seed: u64) -> Result<Model> {
        let g = Graph::new();
        let params = Params::new(&g, seed)?;

        let x = g.placeholder("x", DType::F32, &[batch, PIXELS])?;
        let y = g.placeholder("y", DType::I64, &[batch])?;
        let loss = {
            let _scope = g.scope("loss");
            let one_hot = y.one_hot(CLASSES, DType::F32)?;
            params
                .logits(&x)?
                .softmax_cross_entropy(&one_hot, None, Reduction::SumOverBatchSize)?
        };
        let train = Adam::default().minimize(&loss, None)?;

        let x_test = g.placeholder("x_test", DType::F32, &[test_size, PIXELS])?;
        let y_test = g.placeholder("y_test", DType::I64, &[test_size])?;
        let _scope = g.scope("eval");
        let test_logits = params.logits(&x_test)?;
        let accuracy = test_logits
            .argmax(1)?
            .equal(&y_test)?
            .cast(DType::F32)?
            .mean_all()?;
        drop(_scope);
        Ok(Model {
            graph: g,
            params,
            x,
            y,
            loss,
            train,
            x_test,
            y_test,
            test_logits,
            accuracy,
        })
    }

    /// One Adam step on the examples of `data` at `indices`; returns the batch's loss
    /// before the step.
    pub fn step(&self, sess: &mut Session, data: &Split, indices: &[usize]) -> Result<f32> {
        let (images, labels) = data.batch(indices);
        let out = sess.run(
            &[(&self.x, images.into()), (&self.y, labels.into())],
            &[&self.loss, &self.train],
        )?;
        scalar(&out[0])
    }

    /// The test-set accuracy of the current variables.
    pub fn accuracy(&self, sess: &mut Session, test: &Split) -> Result<f32> {
        let out = sess.run(&self.test_feeds(test), &[&self.accuracy])?;
        scalar(&out[0])
    }

    /// The feeds of the evaluation path for the test set.
    pub fn test_feeds(&self, test: &Split) -> Vec<(&Tensor, Value)> {
        vec![
            (&self.x_test, test.images.clone().into()),
            (&self.y_test, test.labels.clone().into()),
        ]
    }
}

/// The single element of a scalar f32 value.
fn scalar(v: &Value) -> Result<f32> {
    v.as_f32()?
        .iter()
        .next()
        .copied()
        .ok_or_else(|| GraphError::invalid("expected a scalar, got an empty value"))
}

/// A small seeded generator (SplitMix64) for the batch indices: fast, reproducible and
/// dependency-free.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (multiply-shift: bias below `n / 2⁶⁴`). `n` must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `k` indices in `0..n` drawn uniformly with replacement (NumPy's `randint(0, n, k)`).
    pub fn indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        (0..k).map(|_| self.below(n)).collect()
    }
}

/// The batch sampler's seed for a run seed (a stream independent of the initializers').
pub fn sampler_seed(seed: u64) -> u64 {
    seed ^ 0x6d6e_6973_745f_6261 // "mnist_ba"
}

/// Load the embedded subset, or the IDX files of `data_dir`.
pub fn load(data_dir: Option<&Path>) -> Result<Mnist> {
    match data_dir {
        Some(dir) => mnist::load_idx_dir(dir),
        None => mnist::load_embedded_5k(),
    }
}

fn io_err(path: &Path, e: std::io::Error) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

fn progress_bar(len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} batches, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch:>2}/{epochs}"));
    bar
}

/// The training curves, with the epoch (fractional for batches) as x.
#[derive(Default)]
pub struct Curves {
    /// Each batch's loss.
    pub batch_loss: Vec<(f64, f64)>,
    /// Each epoch's average loss.
    pub epoch_loss: Vec<(f64, f64)>,
    /// The test accuracy after each epoch.
    pub accuracy: Vec<(f64, f64)>,
}

impl Curves {
    /// Draw the three curves into one PNG (loss and accuracy share the axis: both lie
    /// within about 0–2.5).
    pub fn draw(&self, path: &Path) -> Result<()> {
        plot::line_chart(
            path,
            "MNIST 784-300-10: training loss and test accuracy",
            "epoch",
            "loss / accuracy",
            &[
                Series {
                    label: "train loss (batch)",
                    points: &self.batch_loss,
                },
                Series {
                    label: "train loss (epoch mean)",
                    points: &self.epoch_loss,
                },
                Series {
                    label: "test accuracy",
                    points: &self.accuracy,
                },
            ],
        )
    }
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

/// Train, report, log and save as `args` say.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let data = load(args.data_dir.as_deref())?;
    if data.train.is_empty() || data.test.is_empty() {
        return Err(GraphError::invalid("the data set has an empty split"));
    }
    let total_batch = (data.train.len() / BATCH).max(1);
    println!(
        "MNIST: {} train / {} test images ({}), {total_batch} batches of {BATCH} per epoch, \
         seed {}, {:?} backend",
        data.train.len(),
        data.test.len(),
        match &args.data_dir {
            Some(d) => d.display().to_string(),
            None => "embedded 5k subset".into(),
        },
        args.seed,
        args.backend
    );

    let model = Model::new(BATCH, data.test.len(), args.seed)?;
    let run_dir = args
        .logdir
        .join(args.run_name.clone().unwrap_or_else(default_run_name));
    let mut tb = SummaryWriter::create(&run_dir)?;
    tb.add_graph(&model.graph.def())?;
    let learning_rate = Adam::default().lr as f32;
    let mut curves = Curves::default();

    let mut sess = Session::with_backend(&model.graph, args.backend.into());
    let mut rng = SplitMix64::new(sampler_seed(args.seed));
    let mut accuracy = f32::NAN;
    let mut step = 0i64;
    for epoch in 1..=args.epochs {
        let bar = progress_bar(total_batch, epoch, args.epochs);
        let mut avg_loss = 0.0f64;
        for _ in 0..total_batch {
            let indices = rng.indices(data.train.len(), BATCH);
            let loss = model.step(&mut sess, &data.train, &indices)?;
            step += 1;
            avg_loss += loss as f64 / total_batch as f64;
            tb.add_scalar("train/loss", loss, step)?;
            curves
                .batch_loss
                .push((step as f64 / total_batch as f64, loss as f64));
            bar.set_message(format!("loss {loss:.4}"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        accuracy = model.accuracy(&mut sess, &data.test)?;
        tb.add_scalars(
            &[
                ("train/epoch_loss", avg_loss as f32),
                ("test/accuracy", accuracy),
                ("train/learning_rate", learning_rate),
            ],
            step,
        )?;
        tb.flush()?;
        curves.epoch_loss.push((epoch as f64, avg_loss));
        curves.accuracy.push((epoch as f64, accuracy as f64));
        println!(
            "epoch {epoch:>2}: average loss {avg_loss:.4}, test accuracy {accuracy:.4} \
             ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
    }

    if args.epochs == 0 {
        accuracy = model.accuracy(&mut sess, &data.test)?;
        tb.add_scalar("test/accuracy", accuracy, 0)?;
        curves.accuracy.push((0.0, accuracy as f64));
    }
    tb.flush()?;
    let curves_png = run_dir.join("curves.png");
    curves.draw(&curves_png)?;
    println!(
        "wrote TensorBoard events {} and {} (view: tensorboard --logdir {})",
        tb.path().display(),
        curves_png.display(),
        args.logdir.display()
    );

    std::fs::create_dir_all(&args.out).map_err(|e| io_err(&args.out, e))?;
    let checkpoint = args.out.join("mnist.safetensors");
    let graph_file = args.out.join("mnist.flumen");
    let dot_file = args.out.join("mnist.dot");
    sess.save_checkpoint(&checkpoint)?;
    model.graph.save(&graph_file)?;
    model.graph.def().save_dot(&dot_file)?;
    println!(
        "wrote {}, {} and {}",
        checkpoint.display(),
        graph_file.display(),
        dot_file.display()
    );
    println!(
        "final test accuracy {accuracy:.4} after {} epochs ({:.1} s)",
        args.epochs,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
