//! AOT shared libraries of the MNIST network: the `.so` loaded with libloading computes
//! the same bits as the JIT session (inference, and training steps with the variables
//! read back); a C program built with `cc` against the generated header links and runs
//! it, and so does the example caller `examples/c/mnist_infer.c`; the Python ctypes
//! example runs it (skipped without python3); bad calls return error codes; the library
//! exports only its entry points and needs only libc, libm (libpthread) and the dynamic
//! loader.
//!
//! The static runtime (`libflumen_aot_runtime.a`) is the one `cargo test` built for this
//! run (`flumen-aot-runtime` is a dev-dependency; see `aot_util::runtime_lib`).

#[allow(dead_code)]
#[path = "../examples/mnist.rs"]
mod mnist_example;

mod aot_util;

use aot_util::{Buf, Lib, assert_bits, scratch};
use flumen::aot::{ExportOptions, LibraryReport, compile_library};
use flumen::data::mnist;
use flumen::{Session, Value};
use mnist_example::{BATCH, DEFAULT_SEED, Model, SplitMix64, sampler_seed};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Images per inference call of the exported inference library.
const INFER_BATCH: usize = 4;

/// The two libraries every test uses, built once per test process.
struct Built {
    dir: PathBuf,
    /// `libmnist.so`: test logits of `INFER_BATCH` images (prefix `mnist`).
    infer: LibraryReport,
    /// `libmnist_train.so`: loss and one Adam step on a batch (prefix `mnist_train`).
    train: LibraryReport,
}

fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let dir = scratch("mnist");
        let model = Model::new(BATCH, INFER_BATCH, DEFAULT_SEED).unwrap();
        let mut sess = Session::new(&model.graph);
        let opts = |prefix: &str| ExportOptions {
            prefix: Some(prefix.into()),
            header: Some(dir.join(format!("{prefix}.h"))),
            ..aot_util::export_options()
        };
        let infer = compile_library(
            &mut sess,
            &[&model.x_test],
            &[&model.test_logits],
            dir.join("libmnist.so"),
            &opts("mnist"),
        )
        .unwrap();
        let train = compile_library(
            &mut sess,
            &[&model.x, &model.y],
            &[&model.loss, &model.train],
            dir.join("libmnist_train.so"),
            &opts("mnist_train"),
        )
        .unwrap();
        Built { dir, infer, train }
    })
}

/// The input pattern the C and Python callers use: pixel i = ((i·37) mod 256) / 255.
fn pattern(n: usize) -> Value {
    let v: Vec<f32> = (0..n * 784)
        .map(|i| ((i * 37) % 256) as f32 / 255.0)
        .collect();
    Value::from_vec(&[n, 784], v).unwrap()
}

/// JIT logits of the pattern with the initial weights (a fresh model, same seed).
fn jit_pattern_logits() -> Value {
    let model = Model::new(BATCH, INFER_BATCH, DEFAULT_SEED).unwrap();
    let mut sess = Session::new(&model.graph);
    sess.run(
        &[(&model.x_test, pattern(INFER_BATCH))],
        &[&model.test_logits],
    )
    .unwrap()
    .remove(0)
}

fn index_of(r: &LibraryReport, name: &str) -> usize {
    r.variables.iter().position(|(n, _)| n == name).unwrap()
}

#[test]
fn mnist_inference_and_training_steps_match_the_jit_bit_for_bit() {
    let b = built();
    let data = mnist::load_embedded_5k().unwrap();
    // A JIT session on an identical fresh model (same seed, so the same initial weights
    // the libraries embed).
    let model = Model::new(BATCH, INFER_BATCH, DEFAULT_SEED).unwrap();
    let mut sess = Session::new(&model.graph);
    let train = Lib::from_report(&b.train);
    let state = train.state(0);
    let mut rng = SplitMix64::new(sampler_seed(DEFAULT_SEED));
    for step in 0..3 {
        let (images, labels) = data.train.batch(&rng.indices(data.train.len(), BATCH));
        let feeds = [Value::from(images), Value::from(labels)];
        let jit = sess
            .run(
                &[(&model.x, feeds[0].clone()), (&model.y, feeds[1].clone())],
                &[&model.loss, &model.train],
            )
            .unwrap();
        let lib = state.run(&feeds).unwrap();
        assert_bits(&format!("training step {step}: loss, train"), &jit, &lib);
    }
    // Every variable of the step (weights, Adam moments and step count) agrees.
    for (i, (name, _)) in b.train.variables.iter().enumerate() {
        let jit = &sess.variables()[name];
        assert!(
            jit.bit_eq(&state.variable(i)),
            "variable `{name}` after 3 steps differs"
        );
    }
    // Inference with the trained weights, moved into the inference library's state.
    let infer = Lib::from_report(&b.infer);
    let istate = infer.state(1);
    for (i, (name, _)) in b.infer.variables.iter().enumerate() {
        istate.set_variable(i, &state.variable(index_of(&b.train, name)));
    }
    let (test_images, _) = data.test.batch(&[0, 1, 2, 3]);
    let x = Value::from(test_images);
    let jit = sess
        .run(&[(&model.x_test, x.clone())], &[&model.test_logits])
        .unwrap();
    assert_bits("trained logits", &jit, &istate.run(&[x]).unwrap());
    // Reset restores the embedded (initial) weights.
    assert_eq!(istate.reset(), 0);
    let fresh = jit_pattern_logits();
    assert_bits(
        "logits after reset",
        &[fresh],
        &istate.run(&[pattern(INFER_BATCH)]).unwrap(),
    );
}

#[test]
fn states_are_independent_and_run_concurrently() {
    let lib = Lib::from_report(&built().infer);
    let expected = jit_pattern_logits();
    let zeros = Value::zeros(flumen::DType::F32, &[INFER_BATCH, 784]);
    let zero_logits = lib.state(1).run(std::slice::from_ref(&zeros)).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (lib, zeros) = (&lib, zeros.clone());
                s.spawn(move || {
                    let st = lib.state(1 + t % 2);
                    let input = if t % 2 == 0 {
                        pattern(INFER_BATCH)
                    } else {
                        zeros
                    };
                    let mut last = None;
                    for _ in 0..5 {
                        last = Some(st.run(std::slice::from_ref(&input)).unwrap().remove(0));
                    }
                    (t, last.unwrap())
                })
            })
            .collect();
        for h in handles {
            let (t, out) = h.join().unwrap();
            let want = if t % 2 == 0 {
                &expected
            } else {
                &zero_logits[0]
            };
            assert!(out.bit_eq(want), "thread {t}: {out:?} vs {want:?}");
        }
    });
}

#[test]
fn bad_calls_return_error_codes() {
    let lib = Lib::from_report(&built().infer);
    let st = lib.state(1);
    let x = Buf::of(&pattern(INFER_BATCH));
    let mut y = Buf::zeros(INFER_BATCH * 10 * 4);
    let ins = [x.ptr()];
    let outs = [y.ptr_mut()];
    let (good_in, good_out) = ([x.len()], [y.len()]);

    let run = |i: *const *const _, ib: *const usize, o: *const *mut _, ob: *const usize| {
        st.run_raw(i, ib, o, ob)
    };
    assert_eq!(
        run(
            ins.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        0
    );
    // Null arrays.
    assert_eq!(
        run(
            std::ptr::null(),
            good_in.as_ptr(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        1
    );
    assert_eq!(
        run(
            ins.as_ptr(),
            std::ptr::null(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        1
    );
    assert_eq!(
        run(
            ins.as_ptr(),
            good_in.as_ptr(),
            std::ptr::null(),
            good_out.as_ptr()
        ),
        1
    );
    assert_eq!(
        run(
            ins.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            std::ptr::null()
        ),
        1
    );
    // A null data pointer.
    let null_in = [std::ptr::null::<std::ffi::c_void>()];
    assert_eq!(
        run(
            null_in.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        1
    );
    // Wrong sizes, with the detail naming the input and both sizes.
    for bad in [0, x.len() - 1, x.len() + 4] {
        assert_eq!(
            run(
                ins.as_ptr(),
                [bad].as_ptr(),
                outs.as_ptr(),
                good_out.as_ptr()
            ),
            2
        );
        let msg = st.last_error();
        assert!(
            msg.contains("x_test") && msg.contains(&bad.to_string()),
            "{msg}"
        );
    }
    assert_eq!(
        run(
            ins.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            [y.len() - 4].as_ptr()
        ),
        2
    );
    // Misaligned data.
    let mis = [(x.ptr() as *const u8).wrapping_add(1) as *const std::ffi::c_void];
    assert_eq!(
        run(
            mis.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        4
    );
    // A null state and a null `out`.
    let null_state = lib.null_state();
    assert_eq!(
        null_state.run_raw(
            ins.as_ptr(),
            good_in.as_ptr(),
            outs.as_ptr(),
            good_out.as_ptr()
        ),
        1
    );
    assert_eq!(null_state.reset(), 1);
    assert_eq!(null_state.last_error(), "");
    assert_eq!(lib.state_new_raw(std::ptr::null_mut()), 1);
    aot_util::free_raw(&lib, std::ptr::null_mut());
    // Variables: index and size checks.
    let mut v = Buf::zeros(784 * 300 * 4);
    assert_eq!(st.read_variable_raw(99, v.ptr_mut(), v.len()), 3);
    assert_eq!(st.read_variable_raw(0, v.ptr_mut(), v.len() - 1), 2);
    assert_eq!(st.read_variable_raw(0, std::ptr::null_mut(), v.len()), 1);
    assert_eq!(st.write_variable_raw(0, v.ptr(), 7), 2);
    assert_eq!(st.write_variable_raw(4, v.ptr(), 40), 3);
    // Error texts, and the state still works after all of that.
    assert!(lib.error_message(2).contains("size"));
    assert_eq!(lib.error_message(1234), "unknown error code");
    let out = st.run(&[pattern(INFER_BATCH)]).unwrap();
    assert_bits("after bad calls", &[jit_pattern_logits()], &out);
    // The self-description lists the input with its byte size.
    assert!(
        lib.info().contains(
            "\"name\": \"x_test\", \"dtype\": \"f32\", \"shape\": [4, 784], \"bytes\": 12544"
        ),
        "{}",
        lib.info()
    );
}

/// Output of a tool, or `None` when it is not installed.
fn tool(cmd: &str, args: &[&str], file: &Path) -> Option<String> {
    let out = Command::new(cmd).args(args).arg(file).output().ok()?;
    assert!(out.status.success(), "{cmd} {args:?} failed");
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn exports_only_entry_points_and_needs_only_libc_libm_libpthread() {
    let b = built();
    for r in [&b.infer, &b.train] {
        let Some(dynamic) = tool("readelf", &["-d", "-W"], &r.library) else {
            eprintln!("skipped: readelf (binutils) is not installed");
            return;
        };
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next())
            .collect();
        assert!(!needed.is_empty(), "{dynamic}");
        for lib in &needed {
            assert!(
                ["libc.so.", "libm.so.", "libpthread.so.", "ld-linux"]
                    .iter()
                    .any(|ok| lib.starts_with(ok)),
                "{}: unexpected NEEDED {lib} (all: {needed:?})",
                r.library.display()
            );
        }
        let symbols = tool("nm", &["-D", "--defined-only"], &r.library).unwrap();
        let mut exported: Vec<&str> = symbols
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        exported.sort();
        let mut expected = flumen::compiler::aot::glue::entry_points(&r.prefix);
        expected.sort();
        assert_eq!(exported, expected, "{}", r.library.display());
    }
}

#[test]
fn c_program_links_against_the_header_and_runs() {
    let b = built();
    let exe = b.dir.join("aot_check");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/aot_check.c");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&b.dir)
        .arg(&src)
        .arg("-L")
        .arg(&b.dir)
        .arg("-lmnist")
        .arg(format!("-Wl,-rpath,{}", b.dir.display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed to link AOT libraries");
    assert!(status.success(), "compiling {}", src.display());
    let out = Command::new(&exe).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("all C checks passed"), "{stderr}");
    let bits = parse_bits(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(bits, f32_bits(&jit_pattern_logits()));
}

#[test]
fn c_example_caller_builds_against_the_header_and_prints_the_jit_logits() {
    let b = built();
    let exe = b.dir.join("mnist_infer");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/c/mnist_infer.c");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&b.dir)
        .arg(&src)
        .arg("-L")
        .arg(&b.dir)
        .arg("-lmnist")
        .arg(format!("-Wl,-rpath,{}", b.dir.display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed to link AOT libraries");
    assert!(status.success(), "compiling {}", src.display());
    let out = Command::new(&exe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let jit = jit_pattern_logits();
    let jit = jit.as_f32().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), INFER_BATCH, "{stdout}");
    for (i, line) in lines.iter().enumerate() {
        // `image i logits: v0 .. v9  -> predicted digit d`, logits with 4 decimals.
        let (logits, digit) = line
            .strip_prefix(&format!("image {i} logits:"))
            .and_then(|l| l.split_once("-> predicted digit"))
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let printed: Vec<f32> = logits
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let row: Vec<f32> = (0..10).map(|c| jit[[i, c]]).collect();
        assert_eq!(printed.len(), 10, "{line}");
        for (p, j) in printed.iter().zip(&row) {
            assert!((p - j).abs() <= 6e-5, "image {i}: printed {p}, JIT {j}");
        }
        let best = (0..10).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        assert_eq!(digit.trim().parse::<usize>().unwrap(), best, "{line}");
    }
}

fn parse_bits(text: &str) -> Vec<u32> {
    text.lines()
        .map(|l| u32::from_str_radix(l.trim(), 16).unwrap())
        .collect()
}

fn f32_bits(v: &Value) -> Vec<u32> {
    v.as_f32().unwrap().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn python_ctypes_example_runs_the_library() {
    let has_python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_python {
        eprintln!("skipped: python3 is not installed (the ctypes example needs it)");
        return;
    }
    let b = built();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/run_model.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&b.infer.library)
        .arg("--bits")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("short input rejected: error 2"), "{stderr}");
    let bits = parse_bits(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(bits, f32_bits(&jit_pattern_logits()));
}
