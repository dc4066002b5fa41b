//! Checkpoints: a session's variables saved to, and restored from, a
//! [safetensors](https://huggingface.co/docs/safetensors) file.
//!
//! A saved model is a pair of files: the graph as text IR (`Graph::save`, `.flumen`) and
//! the variables' values as safetensors (`.safetensors`), one tensor per variable node,
//! keyed by the node's full name (`layer1/W`, `Adam/layer1/W/m`, `Adam/t`, ...). Every
//! variable of the graph is saved, trainable or not, so restoring an optimizer's slots
//! resumes training exactly. The counters of random ops are not saved (as in TF1's `Saver`).
//!
//! Each Flumen dtype maps to one safetensors dtype: `f32`→`F32`, `f64`→`F64`, `i32`→`I32`,
//! `i64`→`I64`, `u8`→`U8`, `bool`→`BOOL` (one byte, 0 or 1); elements are little-endian
//! and row-major, as the format prescribes.
//!
//! [`Session::restore`] checks the whole file against the graph before it changes
//! anything: a missing or unreadable file, data that is not valid safetensors, a tensor
//! whose name is not a variable of the graph, a variable the file lacks, or a dtype or
//! shape that differs from the graph's are each a [`GraphError`] naming the file and the
//! variable; a failed restore leaves the session as it was.

use crate::Session;
use flumen_frontend::{DType, GraphError, Result, Value};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// At most this many problems are listed in one restore error.
const MAX_LISTED_PROBLEMS: usize = 10;

// `GraphError` is large crate-wide (clippy's `result_large_err` fires on every fallible
// public fn); these return the crate's `Result` like the rest of the API.
#[allow(clippy::result_large_err)]
impl Session {
    /// Save the current value of every variable of the graph to the safetensors file
    /// `path` (replaced if it exists), initialising variables that have not been used
    /// yet. I/O failures are [`GraphError::Io`] naming the path.
    pub fn save_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.initialize()?;
        // On a GPU session the device holds the current values; bring them to the host first.
        self.sync_variables()?;
        let names: Vec<String> = self.graph().variables().iter().map(|v| v.name()).collect();
        let mut bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for name in names {
            let value = self.state().variables.get(&name).ok_or_else(|| {
                GraphError::invalid(format!("variable `{name}` was not initialised"))
            })?;
            bytes.push((
                name,
                safetensors_dtype(value.dtype()),
                value.shape().to_vec(),
                to_le_bytes(value),
            ));
        }
        let views = bytes
            .iter()
            .map(|(name, dtype, shape, data)| {
                TensorView::new(*dtype, shape.clone(), data)
                    .map(|view| (name.as_str(), view))
                    .map_err(|e| io_err(path, format!("variable `{name}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let file = safetensors::serialize(views, None)
            .map_err(|e| io_err(path, format!("encoding the checkpoint: {e}")))?;
        std::fs::write(path, file).map_err(|e| io_err(path, format!("writing: {e}")))
    }

    /// Overwrite every variable of the graph with its value in the safetensors file `path`
    /// (written by [`Session::save_checkpoint`], or by any tool that names tensors after
    /// the graph's variables). The file must hold exactly the graph's variables, each with
    /// the variable's dtype and shape; otherwise nothing changes and the error names the
    /// file and each offending variable (up to ten) with what was expected.
    pub fn restore(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| io_err(path, format!("reading: {e}")))?;
        let file = SafeTensors::deserialize(&data)
            .map_err(|e| io_err(path, format!("not a valid safetensors checkpoint: {e}")))?;

        let graph = self.graph().clone();
        let variables: BTreeMap<String, (DType, Vec<usize>)> = graph
            .variables()
            .iter()
            .map(|v| (v.name(), (v.dtype(), v.shape().to_vec())))
            .collect();
        let mut problems = Vec::new();
        let mut in_file: BTreeMap<String, TensorView<'_>> = BTreeMap::new();
        for (name, view) in file.iter() {
            if !variables.contains_key(name) {
                let what = match graph.get(name) {
                    Some(node) => format!("is a {} node, not a variable", node.op().name()),
                    None => "is not a node of the graph".to_string(),
                };
                problems.push(format!(
                    "unknown variable `{name}`: the checkpoint holds it but `{name}` {what}"
                ));
            } else {
                in_file.insert(name.to_string(), view);
            }
        }
        let mut values = Vec::new();
        for (name, (dtype, shape)) in &variables {
            let expected = format!("{dtype}{shape:?}");
            let Some(view) = in_file.get(name) else {
                problems.push(format!(
                    "missing variable `{name}`: the graph expects {expected} but the \
                     checkpoint has no tensor of that name"
                ));
                continue;
            };
            if view.dtype() != safetensors_dtype(*dtype) {
                problems.push(format!(
                    "variable `{name}`: dtype mismatch: the checkpoint holds {}{:?} but the \
                     graph expects {expected} (safetensors {})",
                    view.dtype(),
                    view.shape(),
                    safetensors_dtype(*dtype)
                ));
            } else if view.shape() != shape.as_slice() {
                problems.push(format!(
                    "variable `{name}`: shape mismatch: the checkpoint holds shape {:?} but \
                     the graph expects {expected}",
                    view.shape()
                ));
            } else {
                match from_le_bytes(*dtype, shape, view.data()) {
                    Ok(value) => values.push((name.clone(), value)),
                    Err(msg) => problems.push(format!("variable `{name}`: {msg}")),
                }
            }
        }
        if !problems.is_empty() {
            let total = problems.len();
            problems.truncate(MAX_LISTED_PROBLEMS);
            let mut msg = format!("cannot restore the checkpoint: {}", problems.join("; "));
            if total > MAX_LISTED_PROBLEMS {
                msg.push_str(&format!("; and {} more", total - MAX_LISTED_PROBLEMS));
            }
            return Err(io_err(path, msg));
        }
        let state = self.state_mut();
        for (name, value) in values {
            state.variables.insert(name, value);
        }
        Ok(())
    }
}

fn io_err(path: &Path, msg: impl Into<String>) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// The safetensors dtype a Flumen dtype is stored as.
fn safetensors_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

/// The elements of `value`, little-endian, in row-major order.
fn to_le_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::F32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::F64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::I32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::I64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::U8(a) => a.iter().copied().collect(),
        Value::Bool(a) => a.iter().map(|&b| b as u8).collect(),
    }
}

/// Decode little-endian row-major elements of `dtype` into a value of `shape`. The byte
/// count was validated by the safetensors reader; bools must be 0 or 1.
fn from_le_bytes(dtype: DType, shape: &[usize], data: &[u8]) -> Result<Value, String> {
    fn decode<T: flumen_frontend::Element, const N: usize>(
        shape: &[usize],
        data: &[u8],
        f: fn([u8; N]) -> T,
    ) -> Result<Value, String> {
        let elements = data
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect();
        Value::from_vec(shape, elements).map_err(|e| e.to_string())
    }
    match dtype {
        DType::F32 => decode(shape, data, f32::from_le_bytes),
        DType::F64 => decode(shape, data, f64::from_le_bytes),
        DType::I32 => decode(shape, data, i32::from_le_bytes),
        DType::I64 => decode(shape, data, i64::from_le_bytes),
        DType::U8 => decode(shape, data, |[b]: [u8; 1]| b),
        DType::Bool => {
            if let Some(i) = data.iter().position(|&b| b > 1) {
                return Err(format!(
                    "BOOL element {i} is the byte {}, expected 0 or 1",
                    data[i]
                ));
            }
            decode(shape, data, |[b]: [u8; 1]| b == 1)
        }
    }
}
