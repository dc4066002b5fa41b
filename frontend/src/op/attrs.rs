//! Attributes as data: every op's attributes listed by name ([`attrs`]) and an op rebuilt
//! from its name and attributes ([`op_from_attrs`]). The text IR, the DOT dump and the
//! TensorBoard writer print attributes through [`attrs`]; the parser goes back through
//! [`op_from_attrs`]. The two are kept inverse by the text round-trip property test.

use super::{ArgReduceOp, BinaryOp, Distribution, Op, ReduceOp, SliceDim, SliceSpec, UnaryOp};
use crate::dtype::{DType, Scalar};
use crate::value::Value;
use std::collections::BTreeMap;

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `true` / `false`
    Bool(bool),
    /// an integer
    Int(i64),
    /// a float (printed with a `.` or exponent so it reads back as a float)
    Float(f64),
    /// `[1, 2, 3]`
    Ints(Vec<i64>),
    /// `[(1, 2), (3, 4)]`
    Pairs(Vec<(i64, i64)>),
    /// `[(0, 1, 3), ...]`
    Triples(Vec<(i64, i64, i64)>),
    /// a dtype name
    DType(DType),
    /// a tensor literal `f32[2] [1.0, 2.0]`
    Tensor(Value),
}

/// Attributes by name, as the parser collects them.
pub type AttrMap = BTreeMap<String, AttrValue>;

fn ints(v: &[usize]) -> AttrValue {
    AttrValue::Ints(v.iter().map(|&x| x as i64).collect())
}

fn scalar(s: Scalar) -> AttrValue {
    match s {
        Scalar::Float(x) => AttrValue::Float(x),
        Scalar::Int(i) => AttrValue::Int(i),
        Scalar::Bool(b) => AttrValue::Bool(b),
    }
}

fn slice_attr(s: &SliceSpec) -> AttrValue {
    AttrValue::Triples(
        s.dims
            .iter()
            .map(|d| (d.start as i64, d.step, d.len as i64))
            .collect(),
    )
}

/// The attributes of an op, in a fixed order, by name.
pub fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    use AttrValue as A;
    match op {
        Op::Constant(v) => vec![("value", A::Tensor(v.clone()))],
        Op::Placeholder { dtype, shape } => {
            vec![("dtype", A::DType(*dtype)), ("shape", ints(shape))]
        }
        Op::Variable { trainable } => vec![("trainable", A::Bool(*trainable))],
        Op::Read | Op::Assign | Op::Select | Op::NoOp | Op::Unary(_) | Op::Binary(_) => vec![],
        Op::AssignSlice(s) | Op::Slice(s) => vec![("dims", slice_attr(s))],
        Op::Random {
            dist,
            dtype,
            shape,
            seed,
        } => {
            let mut v = match *dist {
                Distribution::Normal { mean, stddev }
                | Distribution::TruncatedNormal { mean, stddev } => {
                    vec![("mean", A::Float(mean)), ("stddev", A::Float(stddev))]
                }
                Distribution::Uniform { low, high } => {
                    vec![("low", A::Float(low)), ("high", A::Float(high))]
                }
                Distribution::UniformInt { low, high } => {
                    vec![("low", A::Int(low)), ("high", A::Int(high))]
                }
            };
            v.extend([
                ("dtype", A::DType(*dtype)),
                ("shape", ints(shape)),
                ("seed", A::Int(*seed as i64)),
            ]);
            v
        }
        Op::Categorical {
            num_samples,
            dtype,
            seed,
        } => vec![
            ("num_samples", A::Int(*num_samples as i64)),
            ("dtype", A::DType(*dtype)),
            ("seed", A::Int(*seed as i64)),
        ],
        Op::Cast(d) => vec![("dtype", A::DType(*d))],
        Op::Reduce { axes, keepdims, .. } => {
            vec![("axes", ints(axes)), ("keepdims", A::Bool(*keepdims))]
        }
        Op::ArgReduce { axis, dtype, .. } => {
            vec![("axis", A::Int(*axis as i64)), ("dtype", A::DType(*dtype))]
        }
        Op::Cumsum {
            axis,
            exclusive,
            reverse,
        } => vec![
            ("axis", A::Int(*axis as i64)),
            ("exclusive", A::Bool(*exclusive)),
            ("reverse", A::Bool(*reverse)),
        ],
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            vec![
                ("transpose_a", A::Bool(*transpose_a)),
                ("transpose_b", A::Bool(*transpose_b)),
            ]
        }
        Op::Solve | Op::Expm => vec![],
        Op::Reshape(s) | Op::BroadcastTo(s) => vec![("shape", ints(s))],
        Op::Transpose(p) => vec![("perm", ints(p))],
        Op::Concat { axis } => vec![("axis", A::Int(*axis as i64))],
        Op::Pad { paddings, value } => vec![
            (
                "paddings",
                A::Pairs(
                    paddings
                        .iter()
                        .map(|&(a, b)| (a as i64, b as i64))
                        .collect(),
                ),
            ),
            ("value", scalar(*value)),
        ],
        Op::Tile(m) => vec![("multiples", ints(m))],
        Op::Roll { shift, axis } => vec![("shift", A::Int(*shift)), ("axis", A::Int(*axis as i64))],
        Op::Gather { axis, batch_dims } => {
            vec![
                ("axis", A::Int(*axis as i64)),
                ("batch_dims", A::Int(*batch_dims as i64)),
            ]
        }
        Op::ScatterAdd {
            axis,
            batch_dims,
            dim,
        } => vec![
            ("axis", A::Int(*axis as i64)),
            ("batch_dims", A::Int(*batch_dims as i64)),
            ("dim", A::Int(*dim as i64)),
        ],
        Op::TopK { k } => vec![("k", A::Int(*k as i64))],
        Op::ArgSort { axis, descending } => vec![
            ("axis", A::Int(*axis as i64)),
            ("descending", A::Bool(*descending)),
        ],
        Op::Composite(c) => c.attrs(),
    }
}

/// Takes typed attributes out of an [`AttrMap`], reporting missing or mistyped ones.
struct Take<'a> {
    op: &'a str,
    map: &'a mut AttrMap,
}

impl Take<'_> {
    fn get(&mut self, key: &str) -> Result<AttrValue, String> {
        self.map
            .remove(key)
            .ok_or_else(|| format!("{} needs attribute `{key}`", self.op))
    }
    fn wrong(&self, key: &str, what: &str, got: &AttrValue) -> String {
        format!("{}: attribute `{key}` must be {what}, got {got:?}", self.op)
    }
    fn bool(&mut self, key: &str) -> Result<bool, String> {
        match self.get(key)? {
            AttrValue::Bool(b) => Ok(b),
            v => Err(self.wrong(key, "a bool", &v)),
        }
    }
    fn int(&mut self, key: &str) -> Result<i64, String> {
        match self.get(key)? {
            AttrValue::Int(i) => Ok(i),
            v => Err(self.wrong(key, "an integer", &v)),
        }
    }
    fn usize(&mut self, key: &str) -> Result<usize, String> {
        let i = self.int(key)?;
        usize::try_from(i)
            .map_err(|_| format!("{}: attribute `{key}` must be >= 0, got {i}", self.op))
    }
    fn float(&mut self, key: &str) -> Result<f64, String> {
        match self.get(key)? {
            AttrValue::Float(x) => Ok(x),
            AttrValue::Int(i) => Ok(i as f64),
            v => Err(self.wrong(key, "a float", &v)),
        }
    }
    fn dtype(&mut self, key: &str) -> Result<DType, String> {
        match self.get(key)? {
            AttrValue::DType(d) => Ok(d),
            v => Err(self.wrong(key, "a dtype", &v)),
        }
    }
    fn usizes(&mut self, key: &str) -> Result<Vec<usize>, String> {
        match self.get(key)? {
            AttrValue::Ints(v) => v
                .into_iter()
                .map(|i| {
                    usize::try_from(i)
                        .map_err(|_| format!("{}: `{key}` entries must be >= 0, got {i}", self.op))
                })
                .collect(),
            v => Err(self.wrong(key, "a list of integers", &v)),
        }
    }
    fn scalar(&mut self, key: &str) -> Result<Scalar, String> {
        match self.get(key)? {
            AttrValue::Float(x) => Ok(Scalar::Float(x)),
            AttrValue::Int(i) => Ok(Scalar::Int(i)),
            AttrValue::Bool(b) => Ok(Scalar::Bool(b)),
            v => Err(self.wrong(key, "a scalar", &v)),
        }
    }
    fn slice(&mut self, key: &str) -> Result<SliceSpec, String> {
        match self.get(key)? {
            AttrValue::Triples(t) => {
                let dims = t
                    .into_iter()
                    .map(|(start, step, len)| {
                        if start < 0 || len < 0 {
                            Err(format!("{}: slice start and length must be >= 0", self.op))
                        } else {
                            Ok(SliceDim {
                                start: start as usize,
                                step,
                                len: len as usize,
                            })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(SliceSpec { dims })
            }
            v => Err(self.wrong(key, "a list of (start, step, len) triples", &v)),
        }
    }
}

/// Rebuild an op from its text-IR name and attributes. Unknown names, missing, extra or
/// mistyped attributes are errors naming the op and the attribute.
pub fn op_from_attrs(name: &str, mut map: AttrMap) -> Result<Op, String> {
    if let Some(c) = super::Composite::from_attrs(name, &mut |key: &str| {
        map.remove(key)
            .ok_or_else(|| format!("{name} needs attribute `{key}`"))
    }) {
        let c = c?;
        if let Some(extra) = map.keys().next() {
            return Err(format!("{name} has no attribute `{extra}`"));
        }
        return Ok(Op::Composite(c));
    }
    let mut t = Take {
        op: name,
        map: &mut map,
    };
    let op = if let Some(u) = UnaryOp::ALL.iter().find(|u| u.name() == name) {
        Op::Unary(*u)
    } else if let Some(b) = BinaryOp::ALL.iter().find(|b| b.name() == name) {
        Op::Binary(*b)
    } else if let Some(r) = ReduceOp::ALL.iter().find(|r| r.name() == name) {
        Op::Reduce {
            op: *r,
            axes: t.usizes("axes")?,
            keepdims: t.bool("keepdims")?,
        }
    } else {
        match name {
            "constant" => match t.get("value")? {
                AttrValue::Tensor(v) => Op::Constant(v),
                v => return Err(t.wrong("value", "a tensor literal", &v)),
            },
            "placeholder" => Op::Placeholder {
                dtype: t.dtype("dtype")?,
                shape: t.usizes("shape")?,
            },
            "variable" => Op::Variable {
                trainable: t.bool("trainable")?,
            },
            "read" => Op::Read,
            "assign" => Op::Assign,
            "assign_slice" => Op::AssignSlice(t.slice("dims")?),
            "random_normal" | "truncated_normal" | "random_uniform" | "random_int" => {
                let dist = match name {
                    "random_normal" => Distribution::Normal {
                        mean: t.float("mean")?,
                        stddev: t.float("stddev")?,
                    },
                    "truncated_normal" => Distribution::TruncatedNormal {
                        mean: t.float("mean")?,
                        stddev: t.float("stddev")?,
                    },
                    "random_uniform" => Distribution::Uniform {
                        low: t.float("low")?,
                        high: t.float("high")?,
                    },
                    _ => Distribution::UniformInt {
                        low: t.int("low")?,
                        high: t.int("high")?,
                    },
                };
                Op::Random {
                    dist,
                    dtype: t.dtype("dtype")?,
                    shape: t.usizes("shape")?,
                    seed: t.int("seed")? as u64,
                }
            }
            "categorical" => Op::Categorical {
                num_samples: t.usize("num_samples")?,
                dtype: t.dtype("dtype")?,
                seed: t.int("seed")? as u64,
            },
            "select" => Op::Select,
            "cast" => Op::Cast(t.dtype("dtype")?),
            "argmax" | "argmin" => Op::ArgReduce {
                op: if name == "argmax" {
                    ArgReduceOp::ArgMax
                } else {
                    ArgReduceOp::ArgMin
                },
                axis: t.usize("axis")?,
                dtype: t.dtype("dtype")?,
            },
            "cumsum" => Op::Cumsum {
                axis: t.usize("axis")?,
                exclusive: t.bool("exclusive")?,
                reverse: t.bool("reverse")?,
            },
            "matmul" => Op::MatMul {
                transpose_a: t.bool("transpose_a")?,
                transpose_b: t.bool("transpose_b")?,
            },
            "solve" => Op::Solve,
            "expm" => Op::Expm,
            "reshape" => Op::Reshape(t.usizes("shape")?),
            "transpose" => Op::Transpose(t.usizes("perm")?),
            "broadcast_to" => Op::BroadcastTo(t.usizes("shape")?),
            "slice" => Op::Slice(t.slice("dims")?),
            "concat" => Op::Concat {
                axis: t.usize("axis")?,
            },
            "pad" => {
                let paddings = match t.get("paddings")? {
                    AttrValue::Pairs(p) => p
                        .into_iter()
                        .map(|(a, b)| {
                            if a < 0 || b < 0 {
                                Err("pad: paddings must be >= 0".to_string())
                            } else {
                                Ok((a as usize, b as usize))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    v => return Err(t.wrong("paddings", "a list of pairs", &v)),
                };
                Op::Pad {
                    paddings,
                    value: t.scalar("value")?,
                }
            }
            "tile" => Op::Tile(t.usizes("multiples")?),
            "roll" => Op::Roll {
                shift: t.int("shift")?,
                axis: t.usize("axis")?,
            },
            "gather" => Op::Gather {
                axis: t.usize("axis")?,
                batch_dims: t.usize("batch_dims")?,
            },
            "scatter_add" => Op::ScatterAdd {
                axis: t.usize("axis")?,
                batch_dims: t.usize("batch_dims")?,
                dim: t.usize("dim")?,
            },
            "top_k" => Op::TopK { k: t.usize("k")? },
            "argsort" => Op::ArgSort {
                axis: t.usize("axis")?,
                descending: t.bool("descending")?,
            },
            "no_op" => Op::NoOp,
            _ => return Err(format!("unknown op `{name}`")),
        }
    };
    if let Some(extra) = map.keys().next() {
        return Err(format!("{name} has no attribute `{extra}`"));
    }
    Ok(op)
}
