//! Shared by the compiler-core benchmarks and the weight exporter of the Python peers: the
//! tutorial's MNIST network (the example's own `Params`, so the benchmark runs exactly what
//! `cargo run --example mnist` trains), its training and inference graphs, the fixed data
//! batches, and thread pools of a pinned size.

#![allow(dead_code, unused_imports)] // each target including this module uses a part of it

#[path = "../../examples/mnist.rs"]
mod mnist_example;

pub use mnist_example::{BATCH, CLASSES, DEFAULT_SEED, PIXELS, Params};

use flumen::data::mnist;
use flumen::nn::Reduction;
use flumen::train::{Adam, Optimizer};
use flumen::{DType, Graph, Result, Tensor, Value};

/// Threads of the benchmarks' pool: `FLUMEN_BENCH_THREADS`, default 2 (the peers' setting).
pub fn threads() -> usize {
    std::env::var("FLUMEN_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// A rayon pool of exactly `n` threads (executables and matrix products use the pool they
/// are run in).
pub fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("a thread pool")
}

/// The training graph: the tutorial's variables, one-hot softmax cross-entropy averaged
/// over the batch, and one Adam step (Keras' defaults), as `examples/mnist.rs` builds it.
pub struct TrainGraph {
    /// The graph.
    pub graph: Graph,
    /// Images `[batch, 784]` f32.
    pub x: Tensor,
    /// Labels `[batch]` i64.
    pub y: Tensor,
    /// The batch's mean loss (before the step).
    pub loss: Tensor,
    /// The Adam update.
    pub train: Tensor,
}

/// Build the training graph for batches of `batch` with the default seed.
pub fn train_graph(batch: usize) -> Result<TrainGraph> {
    let graph = Graph::new();
    let params = Params::new(&graph, DEFAULT_SEED)?;
    let x = graph.placeholder("x", DType::F32, &[batch, PIXELS])?;
    let y = graph.placeholder("y", DType::I64, &[batch])?;
    let loss = {
        let _scope = graph.scope("loss");
        let one_hot = y.one_hot(CLASSES, DType::F32)?;
        params
            .logits(&x)?
            .softmax_cross_entropy(&one_hot, None, Reduction::SumOverBatchSize)?
    };
    let train = Adam::default().minimize(&loss, None)?;
    Ok(TrainGraph {
        graph,
        x,
        y,
        loss,
        train,
    })
}

/// The inference graph: logits `[batch, 10]` of images `x` `[batch, 784]`, with the same
/// initial variables as the training graph.
pub fn inference_graph(batch: usize) -> Result<(Graph, Tensor, Tensor)> {
    let graph = Graph::new();
    let params = Params::new(&graph, DEFAULT_SEED)?;
    let x = graph.placeholder("x", DType::F32, &[batch, PIXELS])?;
    let logits = params.logits(&x)?;
    Ok((graph, x, logits))
}

/// The graph that only holds the variables (for exporting their initial values).
pub fn params_graph() -> Result<Graph> {
    let graph = Graph::new();
    Params::new(&graph, DEFAULT_SEED)?;
    Ok(graph)
}

/// The embedded subset split as the peers split it (`data/README.md`).
pub fn data() -> mnist::Mnist {
    mnist::load_embedded_5k().expect("the embedded MNIST subset loads")
}

/// The training batches every system cycles through: consecutive slices of `batch` rows of
/// the 4,000 training images (40 batches of 100), as feed values.
pub fn train_batches(data: &mnist::Mnist, batch: usize) -> Vec<(Value, Value)> {
    (0..data.train.len() / batch)
        .map(|i| {
            let rows: Vec<usize> = (i * batch..(i + 1) * batch).collect();
            let (images, labels) = data.train.batch(&rows);
            (images.into(), labels.into())
        })
        .collect()
}

/// The first `batch` test images as a feed value (inference inputs).
pub fn test_images(data: &mnist::Mnist, batch: usize) -> Value {
    let rows: Vec<usize> = (0..batch).collect();
    data.test.batch(&rows).0.into()
}
