//! [`Plan`]: an executable without its machine code, as bytes. Ahead-of-time shared
//! libraries embed a plan next to their compiled kernels and weights; the AOT runtime
//! decodes it, validates it and turns it back into the [`Step`]s that
//! [`run_steps`](super::run_steps) executes, with kernels taken from the library's table.
//!
//! # Encoding
//! Little-endian, length-prefixed, versioned by [`PLAN_MAGIC`]: integers are `u64`, strings
//! and lists a `u64` length then their items, dtypes their index in [`DType::ALL`]. An
//! interpreted op is stored as a two-line text IR graph (placeholders for its inputs, then
//! the node), so it is printed and parsed by the same code as model files and its shape
//! rule re-runs on load. Decoding never panics: a truncated or corrupt plan is an error
//! naming what was being read.
//!
//! Constant and variable data live outside the plan, in a data blob at the offsets
//! recorded here (64-byte aligned).

use super::{BufId, BufferDecl, KernelFn, KernelStep, MatMulDims, MatMulStep, Step, Storage};
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{DType, GraphDef, NodeId};

/// The first bytes of every encoded plan (the format version is its last byte).
pub const PLAN_MAGIC: &[u8; 8] = b"FLMNPLN1";

/// A step of a [`Plan`]: a [`Step`] whose compiled kernels are indices into the library's
/// kernel table.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanStep {
    /// A fused kernel.
    Kernel {
        /// Readable name (the fused nodes).
        name: String,
        /// Index in the kernel table.
        kernel: usize,
        /// Argument buffers, in access order.
        args: Vec<BufId>,
        /// Outer iterations.
        outer_len: usize,
        /// Estimated work.
        work: usize,
    },
    /// A matrix product, optionally with an epilogue kernel `(table index, arguments)`.
    MatMul {
        /// Left operand.
        a: BufId,
        /// Right operand.
        b: BufId,
        /// Output.
        c: BufId,
        /// Shapes and strides.
        dims: MatMulDims,
        /// Element type.
        dtype: DType,
        /// Epilogue kernel index and argument buffers.
        epilogue: Option<(usize, Vec<BufId>)>,
    },
    /// An op run by the reference interpreter.
    Interpret {
        /// The op.
        op: Op,
        /// The node's name.
        name: String,
        /// Input buffers and types.
        inputs: Vec<(BufId, TensorType)>,
        /// Output buffer.
        output: BufId,
        /// Output type.
        ty: TensorType,
    },
    /// A buffer copy.
    Copy {
        /// Source.
        src: BufId,
        /// Destination.
        dst: BufId,
    },
}

/// A named tensor whose data sits in the data blob at `offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataRef {
    /// Node name.
    pub name: String,
    /// Type.
    pub ty: TensorType,
    /// Byte offset in the data blob (64-byte aligned).
    pub offset: usize,
}

/// Everything of an executable but its machine code and data.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Buffers.
    pub buffers: Vec<BufferDecl>,
    /// Steps in order.
    pub steps: Vec<PlanStep>,
    /// Feeds (placeholder name, type), in input order.
    pub feeds: Vec<(String, TensorType)>,
    /// Fetches (node name, buffer, type), in output order.
    pub fetches: Vec<(String, BufId, TensorType)>,
    /// Variables, indexed by [`Storage::Variable`], with their initial values in the blob.
    pub variables: Vec<DataRef>,
    /// Constants, indexed by [`Storage::Constant`].
    pub constants: Vec<DataRef>,
    /// Random nodes run by interpreter steps and their starting counters.
    pub counters: Vec<(String, u64)>,
    /// Arena size in bytes.
    pub arena_bytes: usize,
    /// Number of kernels in the library's table.
    pub kernels: usize,
}

impl Plan {
    /// The plan as bytes (see the module docs).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut w = Writer(PLAN_MAGIC.to_vec());
        w.usize(self.buffers.len());
        for b in &self.buffers {
            w.dtype(b.dtype);
            w.usize(b.numel);
            match &b.storage {
                Storage::Arena { offset } => w.pair(0, *offset),
                Storage::Feed(i) => w.pair(1, *i),
                Storage::Variable(i) => w.pair(2, *i),
                Storage::Constant(i) => w.pair(3, *i),
                Storage::Alias(o) => w.pair(4, o.0),
            }
        }
        w.usize(self.steps.len());
        for s in &self.steps {
            match s {
                PlanStep::Kernel {
                    name,
                    kernel,
                    args,
                    outer_len,
                    work,
                } => {
                    w.usize(0);
                    w.str(name);
                    w.usize(*kernel);
                    w.bufs(args);
                    w.usize(*outer_len);
                    w.usize(*work);
                }
                PlanStep::MatMul {
                    a,
                    b,
                    c,
                    dims,
                    dtype,
                    epilogue,
                } => {
                    w.usize(1);
                    w.bufs(&[*a, *b, *c]);
                    let d = dims;
                    for x in [d.batch, d.m, d.n, d.k, d.a_batch_stride, d.b_batch_stride] {
                        w.usize(x);
                    }
                    w.usize(d.transpose_a as usize);
                    w.usize(d.transpose_b as usize);
                    w.dtype(*dtype);
                    match epilogue {
                        None => w.usize(0),
                        Some((k, args)) => {
                            w.usize(1);
                            w.usize(*k);
                            w.bufs(args);
                        }
                    }
                }
                PlanStep::Interpret {
                    op,
                    name,
                    inputs,
                    output,
                    ty,
                } => {
                    w.usize(2);
                    w.str(&op_text(op, name, inputs)?);
                    w.usize(inputs.len());
                    for (b, t) in inputs {
                        w.usize(b.0);
                        w.ty(t);
                    }
                    w.usize(output.0);
                    w.ty(ty);
                }
                PlanStep::Copy { src, dst } => {
                    w.usize(3);
                    w.bufs(&[*src, *dst]);
                }
            }
        }
        w.usize(self.feeds.len());
        for (n, t) in &self.feeds {
            w.str(n);
            w.ty(t);
        }
        w.usize(self.fetches.len());
        for (n, b, t) in &self.fetches {
            w.str(n);
            w.usize(b.0);
            w.ty(t);
        }
        for list in [&self.variables, &self.constants] {
            w.usize(list.len());
            for d in list {
                w.str(&d.name);
                w.ty(&d.ty);
                w.usize(d.offset);
            }
        }
        w.usize(self.counters.len());
        for (n, c) in &self.counters {
            w.str(n);
            w.u64(*c);
        }
        w.usize(self.arena_bytes);
        w.usize(self.kernels);
        Ok(w.0)
    }

    /// Decode a plan written by [`Plan::encode`] and [`validate`](Plan::validate) it.
    pub fn decode(bytes: &[u8]) -> Result<Plan, String> {
        let mut r = Reader { b: bytes, pos: 0 };
        if r.take(8, "the magic bytes")? != PLAN_MAGIC {
            return Err("not a Flumen plan (bad magic bytes or another format version)".into());
        }
        let n = r.len("the buffer count")?;
        let mut buffers = Vec::with_capacity(n);
        for _ in 0..n {
            let dtype = r.dtype()?;
            let numel = r.usize("a buffer's element count")?;
            let (kind, i) = (r.usize("a storage kind")?, r.usize("a storage index")?);
            let storage = match kind {
                0 => Storage::Arena { offset: i },
                1 => Storage::Feed(i),
                2 => Storage::Variable(i),
                3 => Storage::Constant(i),
                4 => Storage::Alias(BufId(i)),
                k => return Err(format!("unknown storage kind {k}")),
            };
            buffers.push(BufferDecl {
                dtype,
                numel,
                storage,
            });
        }
        let n = r.len("the step count")?;
        let mut steps = Vec::with_capacity(n);
        for _ in 0..n {
            steps.push(match r.usize("a step kind")? {
                0 => PlanStep::Kernel {
                    name: r.str()?,
                    kernel: r.usize("a kernel index")?,
                    args: r.bufs()?,
                    outer_len: r.usize("an outer length")?,
                    work: r.usize("a work estimate")?,
                },
                1 => {
                    let abc = r.bufs()?;
                    let [a, b, c] = abc[..] else {
                        return Err("a matmul step needs 3 buffers".into());
                    };
                    let mut v = [0usize; 8];
                    for x in &mut v {
                        *x = r.usize("matmul dimensions")?;
                    }
                    let dims = MatMulDims {
                        batch: v[0],
                        m: v[1],
                        n: v[2],
                        k: v[3],
                        a_batch_stride: v[4],
                        b_batch_stride: v[5],
                        transpose_a: v[6] != 0,
                        transpose_b: v[7] != 0,
                    };
                    let dtype = r.dtype()?;
                    let epilogue = match r.usize("an epilogue flag")? {
                        0 => None,
                        _ => Some((r.usize("an epilogue kernel")?, r.bufs()?)),
                    };
                    PlanStep::MatMul {
                        a,
                        b,
                        c,
                        dims,
                        dtype,
                        epilogue,
                    }
                }
                2 => {
                    let text = r.str()?;
                    let n = r.len("an input count")?;
                    let mut inputs = Vec::with_capacity(n);
                    for _ in 0..n {
                        inputs.push((BufId(r.usize("an input buffer")?), r.ty()?));
                    }
                    let output = BufId(r.usize("an output buffer")?);
                    let ty = r.ty()?;
                    let (name, op) = parse_op_text(&text, &inputs, &ty)?;
                    PlanStep::Interpret {
                        op,
                        name,
                        inputs,
                        output,
                        ty,
                    }
                }
                3 => {
                    let sd = r.bufs()?;
                    let [src, dst] = sd[..] else {
                        return Err("a copy step needs 2 buffers".into());
                    };
                    PlanStep::Copy { src, dst }
                }
                k => return Err(format!("unknown step kind {k}")),
            });
        }
        let n = r.len("the feed count")?;
        let mut feeds = Vec::with_capacity(n);
        for _ in 0..n {
            feeds.push((r.str()?, r.ty()?));
        }
        let n = r.len("the fetch count")?;
        let mut fetches = Vec::with_capacity(n);
        for _ in 0..n {
            fetches.push((r.str()?, BufId(r.usize("a fetch buffer")?), r.ty()?));
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.len("a data list")?;
            for _ in 0..n {
                list.push(DataRef {
                    name: r.str()?,
                    ty: r.ty()?,
                    offset: r.usize("a data offset")?,
                });
            }
        }
        let [variables, constants] = lists;
        let n = r.len("the counter count")?;
        let mut counters = Vec::with_capacity(n);
        for _ in 0..n {
            counters.push((r.str()?, r.u64("a counter")?));
        }
        let plan = Plan {
            buffers,
            steps,
            feeds,
            fetches,
            variables,
            constants,
            counters,
            arena_bytes: r.usize("the arena size")?,
            kernels: r.usize("the kernel count")?,
        };
        if r.pos != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.pos));
        }
        plan.validate()?;
        Ok(plan)
    }

    /// Check that every index is in range and every buffer fits its storage: buffer ids,
    /// storage indices (an alias names an earlier buffer), arena extents, kernel indices,
    /// and the sizes of feeds, fetches, copies and interpreter inputs and outputs.
    pub fn validate(&self) -> Result<(), String> {
        let nb = self.buffers.len();
        let buf = |b: &BufId, what: &str| -> Result<&BufferDecl, String> {
            self.buffers
                .get(b.0)
                .ok_or_else(|| format!("{what}: buffer {} out of range ({nb} buffers)", b.0))
        };
        let bytes_of = |t: &TensorType| -> Option<usize> {
            t.shape
                .iter()
                .try_fold(t.dtype.size_bytes(), |a, &d| a.checked_mul(d))
        };
        for (i, b) in self.buffers.iter().enumerate() {
            let bytes = b
                .numel
                .checked_mul(b.dtype.size_bytes())
                .ok_or_else(|| format!("buffer {i}: size overflows"))?;
            let fits = |ty: &TensorType, what: &str| match bytes_of(ty) {
                Some(n) if n >= bytes => Ok(()),
                _ => Err(format!(
                    "buffer {i} ({bytes} bytes) does not fit {what} {ty}"
                )),
            };
            match &b.storage {
                Storage::Arena { offset } => {
                    if offset
                        .checked_add(bytes)
                        .is_none_or(|e| e > self.arena_bytes)
                    {
                        return Err(format!("buffer {i} overruns the arena"));
                    }
                }
                Storage::Feed(f) => fits(&feed_or(&self.feeds, *f)?, "feed")?,
                Storage::Variable(v) => fits(&data_or(&self.variables, *v, "variable")?, "var")?,
                Storage::Constant(c) => fits(&data_or(&self.constants, *c, "constant")?, "const")?,
                Storage::Alias(o) => {
                    if o.0 >= i || self.buffers[o.0].bytes() < bytes {
                        return Err(format!("buffer {i} aliases buffer {} badly", o.0));
                    }
                }
            }
        }
        let kernel = |k: usize| {
            (k < self.kernels)
                .then_some(())
                .ok_or_else(|| format!("kernel {k} out of range ({} kernels)", self.kernels))
        };
        for (si, s) in self.steps.iter().enumerate() {
            let what = format!("step {si}");
            match s {
                PlanStep::Kernel {
                    kernel: k, args, ..
                } => {
                    kernel(*k)?;
                    args.iter().try_for_each(|b| buf(b, &what).map(|_| ()))?;
                }
                PlanStep::MatMul {
                    a, b, c, epilogue, ..
                } => {
                    for x in [a, b, c] {
                        buf(x, &what)?;
                    }
                    if let Some((k, args)) = epilogue {
                        kernel(*k)?;
                        args.iter().try_for_each(|b| buf(b, &what).map(|_| ()))?;
                    }
                }
                PlanStep::Interpret {
                    inputs, output, ty, ..
                } => {
                    for (b, t) in inputs.iter().chain([(*output, ty.clone())].iter()) {
                        if Some(buf(b, &what)?.bytes()) != bytes_of(t) {
                            return Err(format!("{what}: buffer {} is not a {t}", b.0));
                        }
                    }
                }
                PlanStep::Copy { src, dst } => {
                    if buf(src, &what)?.bytes() != buf(dst, &what)?.bytes() {
                        return Err(format!("{what}: copy between buffers of different sizes"));
                    }
                }
            }
        }
        for (n, b, t) in &self.fetches {
            if Some(buf(b, "fetch")?.bytes()) != bytes_of(t) {
                return Err(format!("fetch `{n}`: buffer {} is not a {t}", b.0));
            }
        }
        for d in self.variables.iter().chain(&self.constants) {
            if bytes_of(&d.ty).is_none() || !d.offset.is_multiple_of(64) {
                return Err(format!("data of `{}` is misplaced or too large", d.name));
            }
        }
        Ok(())
    }

    /// The [`Step`]s to run, with kernel indices replaced by the entries of `table` (which
    /// must hold [`Plan::kernels`] entries).
    pub fn steps_with(&self, table: &[KernelFn]) -> Result<Vec<Step>, String> {
        if table.len() != self.kernels {
            return Err(format!(
                "the plan needs {} kernels but the library has {}",
                self.kernels,
                table.len()
            ));
        }
        Ok(self
            .steps
            .iter()
            .map(|s| s.clone().instantiate(table))
            .collect())
    }
}

impl PlanStep {
    /// The executable [`Step`], with kernel indices replaced by the entries of `table` (the
    /// one conversion both the JIT and the AOT runtime use).
    ///
    /// # Panics
    /// If a kernel index is outside `table` ([`Plan::validate`] and
    /// [`Plan::steps_with`] check that first).
    pub fn instantiate(self, table: &[KernelFn]) -> Step {
        match self {
            PlanStep::Kernel {
                name,
                kernel,
                args,
                outer_len,
                work,
            } => Step::Kernel(KernelStep {
                name,
                f: table[kernel],
                args,
                outer_len,
                work,
            }),
            PlanStep::MatMul {
                a,
                b,
                c,
                dims,
                dtype,
                epilogue,
            } => Step::MatMul(MatMulStep {
                a,
                b,
                c,
                dims,
                dtype,
                epilogue: epilogue.map(|(k, args)| (table[k], args)),
            }),
            PlanStep::Interpret {
                op,
                name,
                inputs,
                output,
                ty,
            } => Step::Interpret {
                op,
                name,
                inputs,
                output,
                ty,
            },
            PlanStep::Copy { src, dst } => Step::Copy { src, dst },
        }
    }
}

fn feed_or(feeds: &[(String, TensorType)], i: usize) -> Result<TensorType, String> {
    feeds
        .get(i)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| format!("feed {i} out of range"))
}

fn data_or(list: &[DataRef], i: usize, what: &str) -> Result<TensorType, String> {
    list.get(i)
        .map(|d| d.ty.clone())
        .ok_or_else(|| format!("{what} {i} out of range"))
}

/// The text IR of `op` applied to placeholders of the input types, named `name`.
fn op_text(op: &Op, name: &str, inputs: &[(BufId, TensorType)]) -> Result<String, String> {
    let mut g = GraphDef::new();
    let mut ids: Vec<NodeId> = Vec::new();
    for (i, (_, t)) in inputs.iter().enumerate() {
        let ph = Op::Placeholder {
            dtype: t.dtype,
            shape: t.shape.clone(),
        };
        ids.push(
            g.add(ph, &[], &[], format!("flumen.aot.in{i}"), None)
                .map_err(|e| e.to_string())?,
        );
    }
    g.add(op.clone(), &ids, &[], name.to_string(), None)
        .map_err(|e| format!("interpreter step `{name}`: {e}"))?;
    Ok(g.to_string())
}

/// Parse [`op_text`]'s output back; the node's inputs and type must match the step's.
fn parse_op_text(
    text: &str,
    inputs: &[(BufId, TensorType)],
    ty: &TensorType,
) -> Result<(String, Op), String> {
    let g: GraphDef = text.parse().map_err(|e| format!("interpreter step: {e}"))?;
    let node = g.nodes().last().ok_or("interpreter step: empty op text")?;
    let types: Vec<&TensorType> = node.inputs.iter().map(|i| &g.node(*i).ty).collect();
    if node.inputs.len() != inputs.len()
        || types.iter().zip(inputs).any(|(a, (_, b))| *a != b)
        || &node.ty != ty
    {
        return Err(format!(
            "interpreter step `{}`: op text does not match the step's types",
            node.name
        ));
    }
    Ok((node.name.clone(), node.op.clone()))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn usize(&mut self, x: usize) {
        self.u64(x as u64);
    }
    fn pair(&mut self, a: usize, b: usize) {
        self.usize(a);
        self.usize(b);
    }
    fn str(&mut self, s: &str) {
        self.usize(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn dtype(&mut self, d: DType) {
        let i = DType::ALL.iter().position(|x| *x == d).expect("in ALL");
        self.usize(i);
    }
    fn ty(&mut self, t: &TensorType) {
        self.dtype(t.dtype);
        self.usize(t.shape.len());
        for d in &t.shape {
            self.usize(*d);
        }
    }
    fn bufs(&mut self, b: &[BufId]) {
        self.usize(b.len());
        for x in b {
            self.usize(x.0);
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| format!("truncated plan: reading {what} at byte {}", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let s = self.take(8, what)?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }
    fn usize(&mut self, what: &str) -> Result<usize, String> {
        usize::try_from(self.u64(what)?).map_err(|_| format!("{what} does not fit a usize"))
    }
    /// A list length, bounded by the bytes left (every item takes at least one byte).
    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.usize(what)?;
        if n > self.b.len() - self.pos {
            return Err(format!("corrupt plan: {what} {n} exceeds the data left"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.len("a string length")?;
        let s = self.take(n, "a string")?;
        String::from_utf8(s.to_vec()).map_err(|_| "corrupt plan: a string is not UTF-8".into())
    }
    fn dtype(&mut self) -> Result<DType, String> {
        let i = self.usize("a dtype")?;
        DType::ALL
            .get(i)
            .copied()
            .ok_or_else(|| format!("corrupt plan: unknown dtype {i}"))
    }
    fn ty(&mut self) -> Result<TensorType, String> {
        let dtype = self.dtype()?;
        let n = self.len("a rank")?;
        let mut shape = Vec::with_capacity(n);
        for _ in 0..n {
            shape.push(self.usize("a dimension")?);
        }
        Ok(TensorType::new(dtype, shape))
    }
    fn bufs(&mut self) -> Result<Vec<BufId>, String> {
        let n = self.len("a buffer list")?;
        (0..n)
            .map(|_| self.usize("a buffer id").map(BufId))
            .collect()
    }
}
