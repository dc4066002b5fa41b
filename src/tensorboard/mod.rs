//! TensorBoard event files: [`SummaryWriter`] writes `events.out.tfevents.*` files that
//! TensorBoard (`tensorboard --logdir runs`) reads — the graph for the Graphs tab and scalar
//! series (loss, accuracy, learning rate …) for the Scalars tab.
//!
//! A file is a sequence of TFRecords ([`record`]: length, masked CRC-32C, data, masked
//! CRC-32C) each holding one `tensorflow.Event` protobuf ([`event`]), the first one carrying
//! `file_version = "brain.Event:2"`. The graph travels as a serialized `tensorflow.GraphDef`
//! ([`graph`]). Everything is encoded by hand against TensorFlow's `.proto` schema
//! ([`proto`]); `tests/tensorboard.rs` reads the files back with the official `tensorboard`
//! Python package.
//!
//! ```no_run
//! use flumen::tensorboard::SummaryWriter;
//! # let graph = flumen::Graph::new();
//! let mut tb = SummaryWriter::create("runs/mnist")?;
//! tb.add_graph(&graph.def())?;
//! for step in 0..100 {
//!     tb.add_scalar("train/loss", 1.0 / (step + 1) as f32, step)?;
//! }
//! tb.flush()?;
//! # Ok::<(), flumen::GraphError>(())
//! ```

pub mod crc32c;
pub mod event;
pub mod graph;
pub mod proto;
pub mod record;

pub use event::{Event, Scalar, What};

use crate::{GraphDef, GraphError, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

fn io_err(path: &Path, e: impl std::fmt::Display) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Seconds since the Unix epoch, as event files record time.
pub fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The host name for file names (`[A-Za-z0-9.-]` only; `localhost` when unknown).
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// Writes one event file in a log directory. Events are buffered; [`SummaryWriter::flush`]
/// (and dropping the writer) writes them out, so TensorBoard sees them while training runs
/// if you flush now and then (say once per epoch).
pub struct SummaryWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl SummaryWriter {
    /// Create `logdir` (and its parents) and a new event file in it named
    /// `events.out.tfevents.<unix seconds>.<host>.<pid>.<n>` (TensorFlow's pattern), starting
    /// with the `file_version` event. Each run should get its own directory
    /// (`runs/<name>/`): TensorBoard shows one run per directory.
    pub fn create(logdir: impl AsRef<Path>) -> Result<SummaryWriter> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let logdir = logdir.as_ref();
        std::fs::create_dir_all(logdir).map_err(|e| io_err(logdir, e))?;
        let now = wall_time();
        let (host, pid) = (hostname(), std::process::id());
        let (path, file) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = logdir.join(format!(
                "events.out.tfevents.{:010}.{host}.{pid}.{n}",
                now as u64
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&path, e)),
            }
        };
        let mut w = SummaryWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write_event(&Event {
            wall_time: now,
            step: 0,
            what: What::FileVersion(event::FILE_VERSION.into()),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event.
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        record::write_record(&mut self.out, &event.encode()).map_err(|e| io_err(&self.path, e))
    }

    /// Record the graph for TensorBoard's Graphs tab (see [`graph`] for what it holds).
    pub fn add_graph(&mut self, def: &GraphDef) -> Result<()> {
        self.write_event(&Event {
            wall_time: wall_time(),
            step: 0,
            what: What::GraphDef(graph::encode_graph(def)),
        })
    }

    /// Record `value` of the series `tag` at `step`. Tags group by their first `/`-segment
    /// in TensorBoard (`train/loss`, `train/accuracy`).
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<()> {
        self.add_scalars(&[(tag, value)], step)
    }

    /// Record several scalars of the same step in one event.
    pub fn add_scalars(&mut self, values: &[(&str, f32)], step: i64) -> Result<()> {
        self.write_event(&Event {
            wall_time: wall_time(),
            step,
            what: What::Summary(
                values
                    .iter()
                    .map(|&(tag, value)| Scalar {
                        tag: tag.to_string(),
                        value,
                    })
                    .collect(),
            ),
        })
    }

    /// Write buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| io_err(&self.path, e))
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        // Errors surface through `flush`; a writer dropped without it loses nothing else.
        let _ = self.out.flush();
    }
}

/// Read an event file back: every record's CRCs are checked and every event decoded.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    record::read_records(&bytes)
        .and_then(|records| records.into_iter().map(Event::decode).collect())
        .map_err(|e| io_err(path, e))
}

/// The event files (`*tfevents*`) directly in `logdir`, sorted by name.
pub fn event_files(logdir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let logdir = logdir.as_ref();
    let mut files: Vec<PathBuf> = std::fs::read_dir(logdir)
        .map_err(|e| io_err(logdir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("tfevents"))
        })
        .collect();
    files.sort();
    Ok(files)
}
