//! TensorBoard event files, read back two ways: with Flumen's own reader (CRCs checked,
//! every event decoded; always runs) and with the official `tensorboard` Python package's
//! `EventAccumulator` — the loader behind `tensorboard --logdir` — which must see the same
//! scalars and the graph's node names, ops, inputs, dtypes and shapes.
//!
//! The Python half uses the interpreter named by `FLUMEN_TB_PYTHON` (`.ci/run` installs
//! tensorboard into `.venv-ci/` and sets it), else `python3`; it is skipped with a message
//! when that interpreter or its `tensorboard` package is missing — unless `FLUMEN_TB_PYTHON`
//! was set explicitly, in which case a missing package is a failure.
//!
//! The MNIST run is the example's own (`examples/mnist.rs`, included as a module) for one
//! epoch on the embedded subset, so the files checked are what `cargo run --example mnist`
//! writes.

#[allow(dead_code)]
#[path = "../examples/mnist.rs"]
mod mnist_example;

use clap::Parser;
use flumen::tensorboard::{self, SummaryWriter, What, graph::decode_graph};
use flumen::{DType, Graph, GraphDef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flumen-tb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one event file holds, by Flumen's reader: scalars by tag as `(step, value)`, and
/// the graph's nodes as `(name, op, inputs)`.
struct Contents {
    scalars: Scalars,
    nodes: Vec<(String, String, Vec<String>)>,
}

fn read_with_flumen(file: &Path) -> Contents {
    let events = tensorboard::read_events(file).unwrap();
    assert_eq!(
        events[0].what,
        What::FileVersion("brain.Event:2".into()),
        "the first event names the file version"
    );
    let mut contents = Contents {
        scalars: BTreeMap::new(),
        nodes: Vec::new(),
    };
    let mut graphs = 0;
    for e in &events[1..] {
        assert!(e.wall_time > 1.6e9, "wall time in seconds: {}", e.wall_time);
        match &e.what {
            What::Summary(values) => {
                for v in values {
                    contents
                        .scalars
                        .entry(v.tag.clone())
                        .or_default()
                        .push((e.step, v.value));
                }
            }
            What::GraphDef(bytes) => {
                graphs += 1;
                contents.nodes = decode_graph(bytes)
                    .unwrap()
                    .into_iter()
                    .map(|n| (n.name, n.op, n.inputs))
                    .collect();
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(graphs <= 1, "{graphs} graphs in one file");
    contents
}

/// The reader script, given a run directory and its log directory. It prints
/// `scalar\ttag\tstep\tvalue` and `node\tname\top\tinputs\tdtype\tshape` lines as
/// `EventAccumulator` loads the run, then `served_scalar\trun\ttag\tstep\tvalue` and
/// `served_graph\trun\tnodes` as `tensorboard --logdir` serves the log directory to its
/// Scalars and Graphs tabs (the multiplexer, the data provider and the graphs plugin).
const READER: &str = r#"
import sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.GRAPH: 1})
acc.Reload()
tags = acc.Tags()
for tag in sorted(tags["scalars"]):
    for e in acc.Scalars(tag):
        print("scalar\t%s\t%d\t%r" % (tag, e.step, e.value))
if tags["graph"]:
    for n in acc.Graph().node:
        shapes = n.attr["_output_shapes"].list.shape
        shape = ",".join(str(d.size) for d in shapes[0].dim) if shapes else "?"
        print("node\t%s\t%s\t%s\t%d\t%s" % (n.name, n.op, ",".join(n.input), n.attr["dtype"].type, shape))

from tensorboard import context
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem, data_provider
from tensorboard.plugins import base_plugin
from tensorboard.plugins.graph import graphs_plugin
from tensorboard.compat.proto import graph_pb2
from google.protobuf import text_format
logdir = sys.argv[2]
mux = pem.EventMultiplexer()
mux.AddRunsFromDirectory(logdir)
mux.Reload()
provider = data_provider.MultiplexerDataProvider(mux, logdir)
tbctx = base_plugin.TBContext(logdir=logdir, multiplexer=mux, data_provider=provider)
ctx = context.RequestContext()
graphs = graphs_plugin.GraphsPlugin(tbctx)
for run, info in sorted(graphs.info_impl(ctx, "").items()):
    if info.get("run_graph"):
        body, _ = graphs.graph_impl(ctx, run, None, False, "")
        g = text_format.Parse(body, graph_pb2.GraphDef())
        print("served_graph\t%s\t%s" % (run, ",".join(n.name for n in g.node)))
scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10**9)
for run, by_tag in sorted(scalars.items()):
    for tag, points in sorted(by_tag.items()):
        for p in points:
            print("served_scalar\t%s\t%s\t%d\t%r" % (run, tag, p.step, p.value))
"#;

/// Scalars by tag, as `(step, value)` in file order.
type Scalars = BTreeMap<String, Vec<(i64, f32)>>;

/// Nodes as the Python reader reports them: name → (op, inputs, dtype enum, shape).
type PyNodes = BTreeMap<String, (String, Vec<String>, u32, String)>;

/// What the official package reads: the run's scalars and nodes (`EventAccumulator`), and
/// what the server would show per run: scalars and graph node names.
struct Read {
    scalars: Scalars,
    nodes: PyNodes,
    served_scalars: BTreeMap<String, Scalars>,
    served_graphs: BTreeMap<String, Vec<String>>,
}

/// Read the run `run_dir` and its log directory `logdir` with the official package, or
/// `None` (after saying why) when it is unavailable.
fn read_with_tensorboard(run_dir: &Path, logdir: &Path) -> Option<Read> {
    let explicit = std::env::var_os("FLUMEN_TB_PYTHON");
    let python = explicit.clone().unwrap_or_else(|| "python3".into());
    let shown = PathBuf::from(&python).display().to_string();
    let probe = Command::new(&python)
        .args(["-c", "import tensorboard; print(tensorboard.__version__)"])
        .output();
    match probe {
        Ok(o) if o.status.success() => eprintln!(
            "reading with tensorboard {} ({shown})",
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        Ok(o) if explicit.is_none() => {
            eprintln!(
                "skipping the TensorBoard reader check: `{shown}` has no `tensorboard` package \
                 ({}); run `.ci/run --setup-only` and set FLUMEN_TB_PYTHON=.venv-ci/bin/python",
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) if explicit.is_none() => {
            eprintln!("skipping the TensorBoard reader check: cannot run `{shown}` ({e})");
            return None;
        }
        other => panic!("FLUMEN_TB_PYTHON={shown} cannot import tensorboard: {other:?}"),
    }
    let out = Command::new(&python)
        .args(["-c", READER])
        .arg(run_dir)
        .arg(logdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the tensorboard reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut read = Read {
        scalars: Scalars::new(),
        nodes: PyNodes::new(),
        served_scalars: BTreeMap::new(),
        served_graphs: BTreeMap::new(),
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "scalar" => {
                // `repr` of the float TensorBoard holds: the f32 widened to a double.
                let v: f64 = f[3].parse().unwrap();
                read.scalars
                    .entry(f[1].to_string())
                    .or_default()
                    .push((f[2].parse().unwrap(), v as f32));
            }
            "node" => {
                let inputs = f[3]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                read.nodes.insert(
                    f[1].to_string(),
                    (
                        f[2].to_string(),
                        inputs,
                        f[4].parse().unwrap(),
                        f[5].to_string(),
                    ),
                );
            }
            "served_scalar" => {
                let v: f64 = f[4].parse().unwrap();
                read.served_scalars
                    .entry(f[1].to_string())
                    .or_default()
                    .entry(f[2].to_string())
                    .or_default()
                    .push((f[3].parse().unwrap(), v as f32));
            }
            "served_graph" => {
                read.served_graphs.insert(
                    f[1].to_string(),
                    f[2].split(',').map(String::from).collect(),
                );
            }
            _ => panic!("unexpected reader output: {line}"),
        }
    }
    Some(read)
}

/// The one event file in `dir`.
fn only_event_file(dir: &Path) -> PathBuf {
    let files = tensorboard::event_files(dir).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    // TensorFlow's pattern: events.out.tfevents.<seconds>.<host>.<pid>.<n>
    assert!(
        name.starts_with("events.out.tfevents.")
            && name.contains(&format!(".{}.", std::process::id())),
        "{name}"
    );
    files[0].clone()
}

#[test]
fn writer_round_trips_scalars_and_graph_through_both_readers() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4, 3]).unwrap();
    let w = {
        let _s = g.scope("dense");
        g.variable("W", ndarray::Array2::<f32>::zeros((3, 2)))
            .unwrap()
    };
    let y = x.matmul(&w).unwrap();
    g.group("done", &[&y]).unwrap();
    let dir = temp_dir("writer");
    let mut tb = SummaryWriter::create(&dir).unwrap();
    tb.add_graph(&g.def()).unwrap();
    let values = [0.5f32, 0.0, -1.25e-7, 3.4e38, 1.0 / 3.0];
    for (step, &v) in values.iter().enumerate() {
        tb.add_scalars(&[("a/loss", v), ("b", 2.0 * v)], step as i64)
            .unwrap();
    }
    drop(tb); // flushes
    let file = only_event_file(&dir);

    let ours = read_with_flumen(&file);
    let expect_a: Vec<(i64, f32)> = values
        .iter()
        .enumerate()
        .map(|(s, &v)| (s as i64, v))
        .collect();
    assert_eq!(ours.scalars["a/loss"], expect_a);
    assert_eq!(ours.scalars["b"].len(), values.len());
    let names: Vec<&str> = ours.nodes.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(
        names,
        ["x", "dense/W/initial_value", "dense/W", "matmul", "done"]
    );
    assert_eq!(ours.nodes[4].2, ["^matmul"]);

    if let Some(Read { scalars, nodes, .. }) = read_with_tensorboard(&dir, &dir) {
        assert_eq!(scalars, ours.scalars, "TensorBoard sees the same scalars");
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes["x"], ("placeholder".into(), vec![], 1, "4,3".into()));
        assert_eq!(
            nodes["matmul"],
            (
                "matmul".into(),
                vec!["x".into(), "dense/W".into()],
                1,
                "4,2".into()
            )
        );
        assert_eq!(
            nodes["done"],
            ("no_op".into(), vec!["^matmul".into()], 10, "".into())
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn corrupt_event_files_are_errors_naming_the_file() {
    let dir = temp_dir("corrupt");
    let mut tb = SummaryWriter::create(&dir).unwrap();
    tb.add_scalar("loss", 1.0, 1).unwrap();
    tb.flush().unwrap();
    let path = tb.path().to_path_buf();
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0x40; // inside the last record's data
    std::fs::write(&path, &bytes).unwrap();
    let err = tensorboard::read_events(&path).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("CRC mismatch"),
        "{err}"
    );
    let err = tensorboard::read_events(dir.join("missing"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    // A log directory that cannot be created (a file is in the way) names the path.
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = SummaryWriter::create(blocker.join("run"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("file/run"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// One epoch of the MNIST example (40 batches on the embedded subset) writes a run that
/// both readers agree on: 40 `train/loss` values, one `test/accuracy`, `train/epoch_loss`
/// and `train/learning_rate` at step 40, and the whole graph (forward scopes, gradients,
/// Adam) with TensorFlow-style inputs; plus `curves.png` and the saved model.
#[test]
fn mnist_example_run_opens_in_tensorboard() {
    let dir = temp_dir("mnist");
    let (logdir, out) = (dir.join("runs"), dir.join("out"));
    let args = mnist_example::Args::parse_from([
        "mnist".as_ref(),
        "--epochs".as_ref(),
        "1".as_ref(),
        "--logdir".as_ref(),
        logdir.as_os_str(),
        "--run-name".as_ref(),
        "ci".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    mnist_example::run(args).unwrap();
    let run = logdir.join("ci");
    let file = only_event_file(&run);
    let ours = read_with_flumen(&file);

    let losses = &ours.scalars["train/loss"];
    assert_eq!(losses.len(), 40);
    assert_eq!(losses.first().unwrap().0, 1);
    assert_eq!(losses.last().unwrap().0, 40);
    assert!(losses.iter().all(|(_, l)| l.is_finite() && *l > 0.0));
    let mean: f32 = losses.iter().map(|(_, l)| l).sum::<f32>() / 40.0;
    let epoch_loss = ours.scalars["train/epoch_loss"][0];
    assert_eq!(epoch_loss.0, 40);
    assert!(
        (epoch_loss.1 - mean).abs() < 1e-4,
        "{epoch_loss:?} vs mean {mean}"
    );
    let (step, accuracy) = ours.scalars["test/accuracy"][0];
    assert_eq!(step, 40);
    assert!(accuracy > 0.7 && accuracy <= 1.0, "accuracy {accuracy}");
    assert_eq!(ours.scalars["train/learning_rate"], vec![(40, 1e-3f32)]);

    // The logged graph is the model's graph, node for node.
    let def: GraphDef = GraphDef::load(out.join("mnist.flumen")).unwrap();
    let expected: Vec<(String, String, Vec<String>)> = def
        .nodes()
        .iter()
        .map(|n| {
            let mut inputs: Vec<String> =
                n.inputs.iter().map(|&i| def.node(i).name.clone()).collect();
            inputs.extend(
                n.control_inputs
                    .iter()
                    .map(|&c| format!("^{}", def.node(c).name)),
            );
            (n.name.clone(), n.op.name().to_string(), inputs)
        })
        .collect();
    assert_eq!(ours.nodes, expected);
    let has = |prefix: &str| ours.nodes.iter().any(|n| n.0.starts_with(prefix));
    assert!(has("layer1/W") && has("layer2/b") && has("gradients/") && has("Adam/"));
    assert!(
        ours.nodes
            .iter()
            .any(|n| n.2.iter().any(|i| i.starts_with('^')))
    );

    let png = std::fs::read(run.join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    if let Some(Read {
        scalars,
        nodes,
        served_scalars,
        served_graphs,
    }) = read_with_tensorboard(&run, &logdir)
    {
        assert_eq!(scalars, ours.scalars, "TensorBoard sees the same scalars");
        // `tensorboard --logdir runs` lists the run `ci` with the same scalars and graph.
        assert_eq!(served_scalars.keys().collect::<Vec<_>>(), ["ci"]);
        assert_eq!(served_scalars["ci"], ours.scalars);
        let ours_in_order: Vec<String> = ours.nodes.iter().map(|n| n.0.clone()).collect();
        assert_eq!(served_graphs.get("ci"), Some(&ours_in_order));
        let names: Vec<&String> = nodes.keys().collect();
        let mut ours_names: Vec<&String> = ours.nodes.iter().map(|n| &n.0).collect();
        ours_names.sort();
        assert_eq!(names, ours_names, "TensorBoard sees the same nodes");
        for n in def.nodes() {
            let (op, inputs, dtype, shape) = &nodes[&n.name];
            assert_eq!(op, n.op.name());
            assert_eq!(
                inputs,
                &expected.iter().find(|e| e.0 == n.name).unwrap().2,
                "{}",
                n.name
            );
            assert_eq!(
                *dtype as u64,
                tensorboard::graph::tf_dtype(n.ty.dtype),
                "{}",
                n.name
            );
            let dims: Vec<String> = n.ty.shape.iter().map(|d| d.to_string()).collect();
            assert_eq!(shape, &dims.join(","), "{}", n.name);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
