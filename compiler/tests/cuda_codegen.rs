//! The CUDA emitter without a GPU:
//! - snapshots (insta, `compiler/tests/snapshots/cuda_codegen__*.snap`) of the device steps
//!   and the CUDA C generated for a dense layer (cuBLAS + epilogue), a softmax, a reduction
//!   with fused producers, a slice assignment, gather and scatter_add;
//! - the whole translation unit (prelude + kernels) of a graph using every unary, binary
//!   and cast op in every dtype, and of the dense layer, is valid C++ (`g++ -fsyntax-only
//!   -Werror` with a stub header, `cuda_stub/cuda_emulation.h`, defining `__global__`,
//!   `threadIdx` …); the other graphs compile with `-Werror` in the emulation tests;
//! - the kernels *run* on the CPU under that header's emulation of CUDA threads, blocks,
//!   `__syncthreads`, warp shuffles and atomics (blocks in turn, a block's threads as
//!   std::threads), with buffers laid out exactly as the device runtime lays them out (the
//!   planned arena, feeds, constants, variables), and every fetch — including every unary,
//!   binary and cast op in every dtype, on values with zeros, negatives and out-of-range
//!   casts, and concat/roll/pad/tile with every shift sign and an empty input — matches the
//!   reference interpreter (f32: 1e-5 relative + 1e-6 absolute, f64: 1e-12 relative, integers and
//!   bools exactly), and a three-phase softmax kernel written directly in the kernel IR
//!   (block max, block Σexp, per-element store) matches the kernel-IR evaluator.
//!
//! The g++ tests print a message and pass when no `g++` with C++20 is installed.

use flumen_compiler::cuda::compile_cuda;
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{DType, Element, GraphDef, NodeId, Value, map_value};
use flumen_runtime::SessionState;
use flumen_runtime::cuda::{CudaProgram, DeviceStep};
use flumen_runtime::exec::Storage;
use flumen_runtime::interpreter::executor;
use ndarray::Dimension;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

fn parse(text: &str) -> GraphDef {
    format!("# flumen graph v1\n{text}")
        .parse()
        .unwrap_or_else(|e| panic!("test graph does not parse: {e}"))
}

/// Every placeholder of `def` (in id order) and the named outputs.
fn feeds_and_fetches(def: &GraphDef, outputs: &[&str]) -> (Vec<NodeId>, Vec<NodeId>) {
    let feeds = def
        .iter()
        .filter(|(_, n)| matches!(n.op, Op::Placeholder { .. }))
        .map(|(id, _)| id)
        .collect();
    let fetches = outputs
        .iter()
        .map(|n| def.find(n).unwrap_or_else(|| panic!("no node `{n}`")))
        .collect();
    (feeds, fetches)
}

fn program(def: &GraphDef, outputs: &[&str]) -> CudaProgram {
    let (feeds, fetches) = feeds_and_fetches(def, outputs);
    compile_cuda(def, &feeds, &fetches).expect("compiles").0
}

/// The steps, then each distinct kernel's CUDA C.
fn describe(p: &CudaProgram) -> String {
    let mut s = String::new();
    for (i, step) in p.steps.iter().enumerate() {
        writeln!(s, "step {i}: {}", step.describe()).unwrap();
    }
    writeln!(s, "arena: {} bytes", p.arena_bytes).unwrap();
    let mut seen = Vec::new();
    for k in p.kernels() {
        if !seen.contains(&k.hash) {
            seen.push(k.hash);
            write!(s, "\n// {}\n{}", k.name, k.source).unwrap();
        }
    }
    s
}

const DENSE: &str = "%x = placeholder() {dtype=f32, shape=[8, 3]} : f32[8,3]
%w_init = constant() {value=f32[3,4] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]} : f32[3,4]
%w = variable(%w_init) {trainable=true} : f32[3,4]
%b = constant() {value=f32[4] [0.5, -0.5, 0.25, 0.0]} : f32[4]
%xw = matmul(%x, %w) {transpose_a=false, transpose_b=false} : f32[8,4]
%pre = add(%xw, %b) : f32[8,4]
%y = relu(%pre) : f32[8,4]
";

const SOFTMAX: &str = "%x = placeholder() {dtype=f32, shape=[4, 300]} : f32[4,300]
%p = softmax(%x) {axis=1} : f32[4,300]
";

const REDUCTION: &str = "%x = placeholder() {dtype=f64, shape=[3, 70]} : f64[3,70]
%t = transpose(%x) {perm=[1, 0]} : f64[70,3]
%e = exp(%t) : f64[70,3]
%two = constant() {value=f64[] [2.0]} : f64[]
%s = mul(%e, %two) : f64[70,3]
%m = reduce_mean(%s) {axes=[0], keepdims=false} : f64[3]
%mx = reduce_max(%x) {axes=[1], keepdims=true} : f64[3,1]
";

const SLICE_ASSIGN: &str = "%init = constant() {value=f32[4,4] [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]} : f32[4,4]
%v = variable(%init) {trainable=false} : f32[4,4]
%x = placeholder() {dtype=f32, shape=[2, 2]} : f32[2,2]
%ten = constant() {value=f32[] [10.0]} : f32[]
%value = mul(%x, %ten) : f32[2,2]
%set = assign_slice(%v, %value) {dims=[(1, 1, 2), (0, 2, 2)]} : f32[4,4]
";

const GATHER_SCATTER: &str = "%p = placeholder() {dtype=f32, shape=[5, 3]} : f32[5,3]
%i = constant() {value=i32[2,2] [4, 0, 2, 4]} : i32[2,2]
%g = gather(%p, %i) {axis=0, batch_dims=0} : f32[2,2,3]
%u = placeholder() {dtype=f32, shape=[2, 2, 3]} : f32[2,2,3]
%s = scatter_add(%u, %i) {axis=0, batch_dims=0, dim=5} : f32[5,3]
";

/// concat, roll, pad and tile (device kernels, not host steps): several axes, an empty
/// input, shifts of every sign and beyond the axis length, integer and bool payloads.
const DATA_MOVEMENT: &str = "%a = placeholder() {dtype=f32, shape=[2, 3, 4]} : f32[2,3,4]
%b = placeholder() {dtype=f32, shape=[2, 5, 4]} : f32[2,5,4]
%e = placeholder() {dtype=f32, shape=[2, 0, 4]} : f32[2,0,4]
%c0 = concat(%a, %e, %b, %a) {axis=1} : f32[2,11,4]
%c1 = concat(%a, %a) {axis=2} : f32[2,3,8]
%r0 = roll(%b) {shift=2, axis=1} : f32[2,5,4]
%r1 = roll(%b) {shift=-7, axis=1} : f32[2,5,4]
%r2 = roll(%a) {shift=13, axis=2} : f32[2,3,4]
%p0 = pad(%a) {paddings=[(0, 1), (2, 0), (1, 3)], value=-1.5} : f32[3,5,8]
%i = placeholder() {dtype=i32, shape=[3, 2]} : i32[3,2]
%p1 = pad(%i) {paddings=[(1, 1), (0, 2)], value=7} : i32[5,4]
%t0 = tile(%a) {multiples=[1, 2, 3]} : f32[2,6,12]
%t1 = tile(%i) {multiples=[2, 1]} : i32[6,2]
%z = placeholder() {dtype=bool, shape=[4]} : bool[4]
%ci = concat(%z, %z) {axis=0} : bool[8]
";

const INTEGERS: &str = "%a = placeholder() {dtype=i32, shape=[6]} : i32[6]
%b = placeholder() {dtype=i32, shape=[6]} : i32[6]
%m = mod(%a, %b) : i32[6]
%d = div(%a, %b) : i32[6]
%s = add(%m, %d) : i32[6]
%c = greater(%a, %b) : bool[6]
%sel = select(%c, %s, %a) : i32[6]
%f = cast(%sel) {dtype=f32} : f32[6]
%h = cast(%f) {dtype=u8} : u8[6]
%tot = reduce_sum(%a) {axes=[0], keepdims=false} : i32[]
";

#[test]
fn cuda_dense_bias_relu() {
    insta::assert_snapshot!(describe(&program(&parse(DENSE), &["y"])));
}

#[test]
fn cuda_softmax() {
    insta::assert_snapshot!(describe(&program(&parse(SOFTMAX), &["p"])));
}

#[test]
fn cuda_reduction_with_fused_producers() {
    insta::assert_snapshot!(describe(&program(&parse(REDUCTION), &["m", "mx"])));
}

#[test]
fn cuda_slice_assign() {
    insta::assert_snapshot!(describe(&program(&parse(SLICE_ASSIGN), &["set"])));
}

#[test]
fn cuda_gather_scatter() {
    insta::assert_snapshot!(describe(&program(&parse(GATHER_SCATTER), &["g", "s"])));
}

#[test]
fn cuda_identical_kernels_share_one_function() {
    let def = parse(
        "%x = placeholder() {dtype=f32, shape=[16]} : f32[16]
%y = placeholder() {dtype=f32, shape=[16]} : f32[16]
%a = exp(%x) : f32[16]
%b = exp(%y) : f32[16]
",
    );
    let p = program(&def, &["a", "b"]);
    let hashes: Vec<u64> = p.kernels().map(|k| k.hash).collect();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[0], hashes[1], "same code, one function");
    assert_eq!(p.source().matches("__global__").count(), 1);
}

/// A graph with every unary op, binary op and cast on every dtype they accept.
fn every_op_graph() -> (GraphDef, Vec<String>) {
    use flumen_frontend::op::{BinaryOp, UnaryOp};
    let mut text = String::new();
    let mut outputs = Vec::new();
    let dtypes = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::Bool,
    ];
    for d in dtypes {
        writeln!(
            text,
            "%x_{d} = placeholder() {{dtype={d}, shape=[7]}} : {d}[7]"
        )
        .unwrap();
        writeln!(
            text,
            "%y_{d} = placeholder() {{dtype={d}, shape=[7]}} : {d}[7]"
        )
        .unwrap();
        for u in UnaryOp::ALL {
            if u.dtypes().accepts(d) {
                let n = format!("{}_{d}", u.name());
                writeln!(text, "%{n} = {}(%x_{d}) : {d}[7]", u.name()).unwrap();
                outputs.push(n);
            }
        }
        for b in BinaryOp::ALL {
            if b.dtypes().accepts(d) {
                let n = format!("{}_{d}", b.name());
                let o = b.output_dtype(d);
                writeln!(text, "%{n} = {}(%x_{d}, %y_{d}) : {o}[7]", b.name()).unwrap();
                outputs.push(n);
            }
        }
        for to in dtypes {
            if to != d {
                let n = format!("cast_{d}_{to}");
                writeln!(text, "%{n} = cast(%x_{d}) {{dtype={to}}} : {to}[7]").unwrap();
                outputs.push(n);
            }
        }
    }
    (parse(&text), outputs)
}

// ---------------------------------------------------------------------------------------
// g++: syntax, and execution under the emulation header
// ---------------------------------------------------------------------------------------

fn stub_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cuda_stub")
}

/// Whether `g++` with C++20 (std::barrier) is available; prints why not.
fn have_gxx() -> bool {
    let probe = Command::new("g++")
        .args(["-std=c++20", "-fsyntax-only", "-x", "c++", "-include"])
        .arg(stub_dir().join("cuda_emulation.h"))
        .arg("/dev/null")
        .output();
    match probe {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "skipping: g++ cannot compile the CUDA stub header: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("skipping: no g++ ({e})");
            false
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cuda_codegen");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn gxx(args: &[&str], src: &PathBuf) -> std::process::Output {
    Command::new("g++")
        .args([
            "-std=c++20",
            "-x",
            "c++",
            "-Wall",
            "-Wno-unused-variable",
            "-include",
        ])
        .arg(stub_dir().join("cuda_emulation.h"))
        .args(args)
        .arg(src)
        .output()
        .expect("g++ runs")
}

#[test]
fn cuda_sources_are_valid_cpp() {
    if !have_gxx() {
        return;
    }
    let (every, outputs) = every_op_graph();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    // The other snapshot graphs compile (with -Werror) in the emulation tests.
    let cases = [
        ("every_op", every, outputs),
        ("dense", parse(DENSE), vec!["y"]),
    ];
    for (name, def, outs) in cases {
        let p = program(&def, &outs);
        let path = scratch(&format!("{name}.cu"));
        std::fs::write(&path, p.source()).unwrap();
        let out = gxx(&["-fsyntax-only", "-Werror"], &path);
        assert!(
            out.status.success(),
            "{name}: generated CUDA C is not valid C++ ({}):\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// C++ initialiser of a value's elements.
fn c_array(v: &Value) -> String {
    let items: Vec<String> = match v {
        Value::F32(a) => a.iter().map(|x| c_float(*x as f64, "f")).collect(),
        Value::F64(a) => a.iter().map(|x| c_float(*x, "")).collect(),
        Value::Bool(a) => a.iter().map(|x| x.to_string()).collect(),
        other => map_value!(other, a => a.iter().map(|x| format!("{x}ll")).collect()),
    };
    format!("{{{}}}", items.join(", "))
}

fn c_float(x: f64, suffix: &str) -> String {
    if x.is_nan() {
        "NAN".into()
    } else if x.is_infinite() {
        (if x > 0.0 { "INFINITY" } else { "-INFINITY" }).into()
    } else {
        format!("{x:e}{suffix}")
    }
}

fn c_elem(d: DType) -> &'static str {
    flumen_compiler::cuda::scalar::c_type(d)
}

/// A deterministic feed for a placeholder: small floats, or integers in -3..=5 (0..=8 for
/// u8; indices are constants in these tests).
fn feed_value(ty: &TensorType, salt: usize) -> Value {
    let n = ty.numel();
    let f = |i: usize| (((i * 7 + salt * 13) % 23) as f64 - 11.0) / 5.5;
    let k = |i: usize| ((i * 5 + salt * 3) % 9) as i64 - 3;
    let shape = ndarray::IxDyn(&ty.shape);
    match ty.dtype {
        DType::F32 => {
            ndarray::ArrayD::from_shape_fn(shape, |i| f(lin(&i, &ty.shape)) as f32).into()
        }
        DType::F64 => ndarray::ArrayD::from_shape_fn(shape, |i| f(lin(&i, &ty.shape))).into(),
        DType::I32 => {
            ndarray::ArrayD::from_shape_fn(shape, |i| k(lin(&i, &ty.shape)) as i32).into()
        }
        DType::I64 => ndarray::ArrayD::from_shape_fn(shape, |i| k(lin(&i, &ty.shape))).into(),
        DType::U8 => {
            ndarray::ArrayD::from_shape_fn(shape, |i| (k(lin(&i, &ty.shape)) + 3) as u8).into()
        }
        DType::Bool => ndarray::ArrayD::from_shape_vec(shape, (0..n).map(|i| i % 3 == 0).collect())
            .unwrap()
            .into(),
    }
}

fn lin(i: &ndarray::IxDyn, shape: &[usize]) -> usize {
    i.slice()
        .iter()
        .zip(shape)
        .fold(0, |acc, (x, d)| acc * d + x)
}

/// A C++ program that lays out the buffers like the device runtime, runs the steps under
/// the emulation header and prints every fetched element.
fn emulation_main(p: &CudaProgram, feeds: &[Value], vars: &[Value]) -> String {
    let mut s = p.source();
    s.push_str("\n#include <cstdio>\n");
    let arrays = [
        ("feed", feeds),
        ("var", vars),
        ("constant", p.constants.as_slice()),
    ];
    for (kind, values) in arrays {
        for (i, v) in values.iter().enumerate() {
            let v = map_value!(v, a => Element::wrap(a.as_standard_layout().into_owned()));
            writeln!(
                s,
                "static {} {kind}{i}[] = {};",
                c_elem(v.dtype()),
                c_array(&v)
            )
            .unwrap();
        }
    }
    writeln!(s, "int main() {{").unwrap();
    writeln!(
        s,
        "  static unsigned char arena[{}] __attribute__((aligned(64)));",
        p.arena_bytes.max(1)
    )
    .unwrap();
    writeln!(s, "  static void* P[{}];", p.buffers.len().max(1)).unwrap();
    writeln!(s, "  static int err = 0;").unwrap();
    for (b, decl) in p.buffers.iter().enumerate() {
        let rhs = match &decl.storage {
            Storage::Arena { offset } => format!("arena + {offset}"),
            Storage::Feed(i) => format!("feed{i}"),
            Storage::Variable(i) => format!("var{i}"),
            Storage::Constant(i) => format!("constant{i}"),
            Storage::Alias(o) => format!("P[{}]", o.0),
        };
        writeln!(s, "  P[{b}] = (void*)({rhs});").unwrap();
    }
    for step in &p.steps {
        match step {
            DeviceStep::Kernel(k) => {
                let mut args: Vec<String> = k
                    .args
                    .iter()
                    .map(|b| format!("({}*)P[{}]", c_elem(p.buffers[b.0].dtype), b.0))
                    .collect();
                if k.error_flag {
                    args.push("&err".into());
                }
                writeln!(
                    s,
                    "  fl_launch({}, {}, [&] {{ {}({}); }});",
                    k.launch.blocks,
                    k.launch.threads,
                    k.entry,
                    args.join(", ")
                )
                .unwrap();
            }
            DeviceStep::Copy { src, dst } => writeln!(
                s,
                "  std::memmove(P[{}], P[{}], {});",
                dst.0,
                src.0,
                p.buffers[dst.0].bytes()
            )
            .unwrap(),
            DeviceStep::Zero { buf } => writeln!(
                s,
                "  std::memset(P[{}], 0, {});",
                buf.0,
                p.buffers[buf.0].bytes()
            )
            .unwrap(),
            other => panic!("the emulation runs kernels, copies and zeroing only: {other:?}"),
        }
    }
    for (b, t) in &p.fetches {
        let (fmt, cast) = if t.dtype.is_float() {
            ("%.17g", "double")
        } else {
            ("%lld", "long long")
        };
        writeln!(
            s,
            "  for (long i = 0; i < {}; ++i) std::printf(\"{fmt}\\n\", ({cast})(({}*)P[{}])[i]);",
            t.numel(),
            c_elem(t.dtype),
            b.0
        )
        .unwrap();
    }
    writeln!(s, "  std::printf(\"err %d\\n\", err);\n  return 0;\n}}").unwrap();
    s
}

/// Run `outputs` of `def` under the emulation and compare with the interpreter.
fn check_emulated(name: &str, def: &GraphDef, outputs: &[&str]) {
    let (feed_ids, fetch_ids) = feeds_and_fetches(def, outputs);
    let (p, _) = compile_cuda(def, &feed_ids, &fetch_ids).expect("compiles");
    let feeds: Vec<Value> = feed_ids
        .iter()
        .enumerate()
        .map(|(i, id)| feed_value(&def.node(*id).ty, i))
        .collect();
    let mut state = SessionState::new();
    executor::initialize_variables(def, &vec![true; def.len()], &mut state).unwrap();
    let vars: Vec<Value> = p
        .variables
        .iter()
        .map(|n| state.variables[n].clone())
        .collect();
    let feed_map: HashMap<NodeId, Value> = feed_ids.iter().copied().zip(feeds.clone()).collect();
    let want = executor::run(def, &feed_map, &fetch_ids, &mut state).expect("interpreter runs");

    let src = scratch(&format!("{name}_main.cu"));
    let exe = scratch(&format!("{name}_main"));
    std::fs::write(&src, emulation_main(&p, &feeds, &vars)).unwrap();
    let out = gxx(
        &["-O1", "-Werror", "-pthread", "-o", exe.to_str().unwrap()],
        &src,
    );
    assert!(
        out.status.success(),
        "{name}: the emulation program does not compile ({}):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("the emulation runs");
    assert!(run.status.success(), "{name}: emulation failed");
    let text = String::from_utf8(run.stdout).unwrap();
    let mut lines = text.lines();
    for (w, out_name) in want.iter().zip(outputs) {
        let want_f: Vec<f64> = match w {
            Value::F32(a) => a.iter().map(|x| *x as f64).collect(),
            Value::F64(a) => a.iter().copied().collect(),
            Value::Bool(a) => a.iter().map(|x| *x as u8 as f64).collect(),
            other => map_value!(other, a => a.iter().map(|x| Element::to_i64(*x) as f64).collect()),
        };
        for (i, want) in want_f.iter().enumerate() {
            let got: f64 = lines.next().expect("one line per element").parse().unwrap();
            let tol = match w.dtype() {
                DType::F32 => 1e-6 + 1e-5 * want.abs(),
                DType::F64 => 1e-12 * (1.0 + want.abs()),
                _ => 0.0,
            };
            let same = (got.is_nan() && want.is_nan()) || got == *want || (got - want).abs() <= tol;
            assert!(
                same,
                "{name}: `{out_name}`[{i}] = {got}, interpreter {want} (tolerance {tol})"
            );
        }
    }
    assert_eq!(
        lines.next(),
        Some("err 0"),
        "{name}: no index error expected"
    );
}

#[test]
fn cuda_kernels_match_the_interpreter_under_emulation() {
    if !have_gxx() {
        return;
    }
    let (every, outputs) = every_op_graph();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    check_emulated("every_op", &every, &outputs);
    check_emulated("softmax", &parse(SOFTMAX), &["p"]);
    check_emulated("reduction", &parse(REDUCTION), &["m", "mx"]);
    check_emulated("slice_assign", &parse(SLICE_ASSIGN), &["set"]);
    check_emulated("gather_scatter", &parse(GATHER_SCATTER), &["g", "s"]);
    check_emulated("integers", &parse(INTEGERS), &["s", "sel", "h", "tot"]);
    check_emulated(
        "data_movement",
        &parse(DATA_MOVEMENT),
        &["c0", "c1", "r0", "r1", "r2", "p0", "p1", "t0", "t1", "ci"],
    );
    check_emulated(
        "layer_norm",
        &parse(
            "%x = placeholder() {dtype=f32, shape=[6, 40]} : f32[6,40]
%m = reduce_mean(%x) {axes=[1], keepdims=true} : f32[6,1]
%d = sub(%x, %m) : f32[6,40]
%sq = square(%d) : f32[6,40]
%v = reduce_mean(%sq) {axes=[1], keepdims=true} : f32[6,1]
%eps = constant() {value=f32[] [0.00001]} : f32[]
%ve = add(%v, %eps) : f32[6,1]
%r = rsqrt(%ve) : f32[6,1]
%y = mul(%d, %r) : f32[6,40]
",
        ),
        &["y"],
    );
}

/// Run one kernel on `bufs` (indexed by `BufId`) under the emulation and compare every
/// buffer with the kernel-IR evaluator's result.
fn check_kernel_emulated(name: &str, k: &flumen_compiler::kernel::Kernel, bufs: Vec<Value>) {
    use flumen_compiler::kernel::eval::eval_kernel;
    let dk = flumen_compiler::cuda::emit_kernel(k);
    let mut want = bufs.clone();
    eval_kernel(k, &mut want);
    let mut s = format!(
        "{}\n{}\n#include <cstdio>\n",
        flumen_compiler::cuda::PRELUDE,
        dk.source
    );
    for (i, v) in bufs.iter().enumerate() {
        writeln!(s, "static {} buf{i}[] = {};", c_elem(v.dtype()), c_array(v)).unwrap();
    }
    let args: Vec<String> = dk.args.iter().map(|b| format!("buf{}", b.0)).collect();
    writeln!(
        s,
        "int main() {{\n  fl_launch({}, {}, [&] {{ {}({}); }});",
        dk.launch.blocks,
        dk.launch.threads,
        dk.entry,
        args.join(", ")
    )
    .unwrap();
    for (i, v) in bufs.iter().enumerate() {
        writeln!(
            s,
            "  for (long j = 0; j < {}; ++j) std::printf(\"%.17g\\n\", (double)buf{i}[j]);",
            v.len()
        )
        .unwrap();
    }
    s.push_str("  return 0;\n}\n");
    let src = scratch(&format!("{name}_kernel.cu"));
    let exe = scratch(&format!("{name}_kernel"));
    std::fs::write(&src, s).unwrap();
    let out = gxx(
        &["-O1", "-Werror", "-pthread", "-o", exe.to_str().unwrap()],
        &src,
    );
    assert!(
        out.status.success(),
        "{name}: does not compile ({}):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("runs");
    assert!(run.status.success(), "{name}: emulation failed");
    let text = String::from_utf8(run.stdout).unwrap();
    let mut lines = text.lines();
    for (b, w) in want.iter().enumerate() {
        for (i, w) in w.to_f64_vec().iter().enumerate() {
            let got: f64 = lines.next().unwrap().parse().unwrap();
            let tol = 1e-6 + 1e-5 * w.abs();
            assert!(
                (got - w).abs() <= tol,
                "{name}: buf{b}[{i}] = {got}, evaluator {w}"
            );
        }
    }
}

/// Softmax as one three-phase kernel (reduce max, reduce Σexp, store over the inner
/// space), the form the kernel IR allows: block reductions feeding a per-element store.
#[test]
fn cuda_multi_phase_softmax_kernel_matches_the_evaluator() {
    use flumen_compiler::kernel::{Access, BufId, Expr, ExprId, Kernel, Phase, PhaseKind};
    use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
    if !have_gxx() {
        return;
    }
    let (rows, cols) = (5, 300);
    let access = |buf| Access {
        buf: BufId(buf),
        dtype: DType::F32,
        offset: 0,
        outer_strides: vec![cols as i64],
        inner_strides: vec![1],
    };
    let f = vec![DType::F32; 6];
    let k = Kernel {
        name: "softmax".into(),
        roots: vec![],
        outer: vec![rows],
        inner: vec![cols],
        accesses: vec![access(0), access(1)],
        phases: vec![
            Phase {
                over_inner: true,
                exprs: vec![Expr::Load(0)],
                dtypes: f[..1].to_vec(),
                kind: PhaseKind::Reduce {
                    op: ReduceOp::Max,
                    value: ExprId(0),
                },
            },
            Phase {
                over_inner: true,
                exprs: vec![
                    Expr::Load(0),
                    Expr::PhaseResult(0),
                    Expr::Binary(BinaryOp::Sub, ExprId(0), ExprId(1)),
                    Expr::Unary(UnaryOp::Exp, ExprId(2)),
                ],
                dtypes: f[..4].to_vec(),
                kind: PhaseKind::Reduce {
                    op: ReduceOp::Sum,
                    value: ExprId(3),
                },
            },
            Phase {
                over_inner: true,
                exprs: vec![
                    Expr::Load(0),
                    Expr::PhaseResult(0),
                    Expr::Binary(BinaryOp::Sub, ExprId(0), ExprId(1)),
                    Expr::Unary(UnaryOp::Exp, ExprId(2)),
                    Expr::PhaseResult(1),
                    Expr::Binary(BinaryOp::Div, ExprId(3), ExprId(4)),
                ],
                dtypes: f,
                kind: PhaseKind::Store {
                    stores: vec![(1, ExprId(5))],
                },
            },
        ],
    };
    let ty = TensorType::new(DType::F32, vec![rows, cols]);
    let x = feed_value(&ty, 3);
    let zeros = Value::from(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[rows, cols])));
    check_kernel_emulated("softmax_3phase", &k, vec![x, zeros]);
    insta::assert_snapshot!(flumen_compiler::cuda::emit_kernel(&k).source);
}

/// A gather index out of range writes the op's site to the error word (what the runtime
/// turns into a run-time error) and reads nothing out of bounds.
#[test]
fn cuda_gather_records_a_bad_index() {
    if !have_gxx() {
        return;
    }
    let def = parse(
        "%p = placeholder() {dtype=f32, shape=[5, 3]} : f32[5,3]
%i = constant() {value=i64[3] [4, 5, -1]} : i64[3]
%g = gather(%p, %i) {axis=0, batch_dims=0} : f32[3,3]
",
    );
    let (feed_ids, fetch_ids) = feeds_and_fetches(&def, &["g"]);
    let (p, _) = compile_cuda(&def, &feed_ids, &fetch_ids).unwrap();
    assert_eq!(p.error_sites, vec!["gather `g`".to_string()]);
    let feeds = vec![feed_value(&def.node(feed_ids[0]).ty, 0)];
    let src = scratch("bad_gather_main.cu");
    let exe = scratch("bad_gather_main");
    std::fs::write(&src, emulation_main(&p, &feeds, &[])).unwrap();
    let out = gxx(
        &["-O1", "-Werror", "-pthread", "-o", exe.to_str().unwrap()],
        &src,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let text = String::from_utf8(run.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"err 1"), "{text}");
    // Row 0 (index 4) is gathered; rows 1 and 2 (bad indices) are zero.
    let want_row0: Vec<f64> = feeds[0].to_f64_vec()[12..15].to_vec();
    let got: Vec<f64> = lines[..9].iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(&got[..3], want_row0.as_slice());
    assert!(got[3..].iter().all(|x| *x == 0.0), "{got:?}");
}

#[test]
fn data_movement_ops_have_device_kernels() {
    let def = parse(DATA_MOVEMENT);
    let outputs = ["c0", "c1", "r0", "r1", "r2", "p0", "p1", "t0", "t1", "ci"];
    let (feeds, fetches) = feeds_and_fetches(&def, &outputs);
    let (p, report) = compile_cuda(&def, &feeds, &fetches).expect("compiles");
    assert!(
        report.interpreted.is_empty(),
        "host steps left: {:?}",
        report.interpreted
    );
    let host = p
        .steps
        .iter()
        .filter(|s| matches!(s, DeviceStep::Host { .. }))
        .count();
    assert_eq!(host, 0);
    // None of them can fail at run time, so none claims an error site.
    assert!(p.error_sites.is_empty());
}
