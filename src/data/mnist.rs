//! MNIST loaders: the embedded 5,000-sample subset (`data/mnist_5k.csv.gz`, split 4,000 /
//! 1,000 by a fixed permutation) and the real IDX files (gzipped or not) from a directory.
//!
//! Images come back as f32 rows of 784 pixels scaled by 1/255; labels as i64.

use flate2::read::GzDecoder;
use flumen_frontend::{GraphError, Result};
use ndarray::{Array1, Array2};
use std::io::Read;
use std::path::Path;

/// The embedded subset (gzipped CSV: 784 pixels then the label per line; provenance in
/// `data/README.md`).
static MNIST_5K_CSV_GZ: &[u8] = include_bytes!("../../data/mnist_5k.csv.gz");
/// The fixed permutation of the subset's rows (first 4,000 train, last 1,000 test).
static MNIST_5K_PERMUTATION: &str = include_str!("../../data/mnist_5k_permutation.txt");

/// Images and labels of one split.
#[derive(Clone, Debug)]
pub struct Split {
    /// `[n, 784]`, pixels in `[0, 1]`.
    pub images: Array2<f32>,
    /// `[n]`, class ids 0..10.
    pub labels: Array1<i64>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The examples at `indices`, as a batch (images `[k, 784]`, labels `[k]`).
    ///
    /// # Panics
    ///
    /// If an index is `>= self.len()`, like slice indexing.
    pub fn batch(&self, indices: &[usize]) -> (Array2<f32>, Array1<i64>) {
        (
            self.images.select(ndarray::Axis(0), indices),
            self.labels.select(ndarray::Axis(0), indices),
        )
    }
}

/// A train/test pair.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
}

fn io_err(path: &str, msg: impl Into<String>) -> GraphError {
    GraphError::Io {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// Parse the CSV format of `mnist_5k.csv.gz` (already decompressed): each line 784 pixel
/// values 0..=255 and then a label 0..=9. Errors name the line and the problem.
pub fn parse_csv(text: &str, source: &str) -> Result<Split> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let at = |msg: String| io_err(source, format!("line {}: {msg}", lineno + 1));
        if fields.len() != 785 {
            return Err(at(format!(
                "expected 785 comma-separated values (784 pixels and a label), found {}",
                fields.len()
            )));
        }
        for (col, f) in fields[..784].iter().enumerate() {
            let v: u8 = f.trim().parse().map_err(|_| {
                at(format!(
                    "column {}: `{f}` is not a pixel value (an integer in 0..=255)",
                    col + 1
                ))
            })?;
            pixels.push(f32::from(v) / 255.0);
        }
        let label: i64 = fields[784]
            .trim()
            .parse()
            .map_err(|_| at(format!("label `{}` is not an integer", fields[784])))?;
        if !(0..10).contains(&label) {
            return Err(at(format!("label {label} is outside 0..=9")));
        }
        labels.push(label);
    }
    let n = labels.len();
    if n == 0 {
        return Err(io_err(source, "no examples found"));
    }
    Ok(Split {
        images: Array2::from_shape_vec((n, 784), pixels)
            .map_err(|e| io_err(source, e.to_string()))?,
        labels: Array1::from_vec(labels),
    })
}

fn gunzip(bytes: &[u8], source: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| io_err(source, format!("gzip: {e}")))?;
    Ok(out)
}

/// The embedded 5,000-sample subset, split 4,000 train / 1,000 test by the committed fixed
/// permutation (`data/mnist_5k_permutation.txt`, NumPy `default_rng(0).permutation(5000)`).
pub fn load_embedded_5k() -> Result<Mnist> {
    let source = "data/mnist_5k.csv.gz (embedded)";
    let text = String::from_utf8(gunzip(MNIST_5K_CSV_GZ, source)?)
        .map_err(|e| io_err(source, e.to_string()))?;
    let all = parse_csv(&text, source)?;
    if all.len() != 5000 {
        return Err(io_err(
            source,
            format!("expected 5000 examples, found {}", all.len()),
        ));
    }
    let perm: Vec<usize> = MNIST_5K_PERMUTATION
        .split_whitespace()
        .map(|s| {
            s.parse()
                .map_err(|_| io_err("data/mnist_5k_permutation.txt", format!("bad index `{s}`")))
        })
        .collect::<Result<_>>()?;
    let mut seen = vec![false; all.len()];
    let is_permutation = perm.len() == all.len()
        && perm
            .iter()
            .all(|&i| i < all.len() && !std::mem::replace(&mut seen[i], true));
    if !is_permutation {
        return Err(io_err(
            "data/mnist_5k_permutation.txt",
            format!(
                "is not a permutation of 0..{} (train and test would overlap)",
                all.len()
            ),
        ));
    }
    let (train_idx, test_idx) = perm.split_at(4000);
    let train = all.batch(train_idx);
    let test = all.batch(test_idx);
    Ok(Mnist {
        train: Split {
            images: train.0,
            labels: train.1,
        },
        test: Split {
            images: test.0,
            labels: test.1,
        },
    })
}

fn read_maybe_gz(dir: &Path, stem: &str) -> Result<(Vec<u8>, String)> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let path = dir.join(&name);
        if path.exists() {
            let shown = path.display().to_string();
            let bytes = std::fs::read(&path).map_err(|e| io_err(&shown, e.to_string()))?;
            let bytes = if name.ends_with(".gz") {
                gunzip(&bytes, &shown)?
            } else {
                bytes
            };
            return Ok((bytes, shown));
        }
    }
    Err(io_err(
        &dir.join(stem).display().to_string(),
        "not found (looked for the file and its .gz)",
    ))
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse an IDX image file (magic 2051): `[n, rows·cols]` pixels scaled by 1/255.
pub fn parse_idx_images(bytes: &[u8], source: &str) -> Result<Array2<f32>> {
    if bytes.len() < 16 || be_u32(bytes, 0) != 2051 {
        return Err(io_err(
            source,
            "not an IDX image file (expected magic number 2051 and a 16-byte header)",
        ));
    }
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    let size = rows
        .checked_mul(cols)
        .and_then(|pixels| pixels.checked_mul(n))
        .ok_or_else(|| io_err(source, "header sizes overflow"))?;
    if bytes.len() - 16 != size {
        return Err(io_err(
            source,
            format!(
                "header says {n}×{rows}×{cols} = {size} bytes of pixels, file has {}",
                bytes.len() - 16
            ),
        ));
    }
    Array2::from_shape_vec(
        (n, rows * cols),
        bytes[16..].iter().map(|&p| p as f32 / 255.0).collect(),
    )
    .map_err(|e| io_err(source, e.to_string()))
}

/// Parse an IDX label file (magic 2049).
pub fn parse_idx_labels(bytes: &[u8], source: &str) -> Result<Array1<i64>> {
    if bytes.len() < 8 || be_u32(bytes, 0) != 2049 {
        return Err(io_err(
            source,
            "not an IDX label file (expected magic number 2049 and an 8-byte header)",
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() - 8 != n {
        return Err(io_err(
            source,
            format!("header says {n} labels, file has {}", bytes.len() - 8),
        ));
    }
    if let Some(bad) = bytes[8..].iter().find(|&&l| l > 9) {
        return Err(io_err(source, format!("label {bad} is outside 0..=9")));
    }
    Ok(bytes[8..].iter().map(|&l| l as i64).collect())
}

fn load_split(dir: &Path, images: &str, labels: &str) -> Result<Split> {
    let (ib, isrc) = read_maybe_gz(dir, images)?;
    let (lb, lsrc) = read_maybe_gz(dir, labels)?;
    let images = parse_idx_images(&ib, &isrc)?;
    if images.ncols() != 784 {
        return Err(io_err(
            &isrc,
            format!(
                "expected 28×28 images (784 pixels), found {}",
                images.ncols()
            ),
        ));
    }
    let labels = parse_idx_labels(&lb, &lsrc)?;
    if images.nrows() != labels.len() {
        return Err(io_err(
            &lsrc,
            format!(
                "{} labels for {} images in {isrc}",
                labels.len(),
                images.nrows()
            ),
        ));
    }
    Ok(Split { images, labels })
}

/// The full MNIST from a directory holding `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`
/// (each optionally `.gz`).
pub fn load_idx_dir(dir: impl AsRef<Path>) -> Result<Mnist> {
    let dir = dir.as_ref();
    Ok(Mnist {
        train: load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?,
        test: load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?,
    })
}
