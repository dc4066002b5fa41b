//! Ahead-of-time export: a session's graph, for chosen feeds and fetches, as one
//! self-contained shared library plus a C header.
//!
//! ```no_run
//! # use flumen::{DType, Graph, Session};
//! # fn main() -> flumen::Result<()> {
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F32, &[1, 4])?;
//! let w = g.variable("w", ndarray::Array2::<f32>::ones((4, 2)))?;
//! let y = x.matmul(&w)?.relu()?;
//! let mut sess = Session::new(&g);
//! let opts = flumen::aot::ExportOptions::default();
//! let lib = flumen::aot::compile_library(&mut sess, &[&x], &[&y], "libtiny.so", &opts)?;
//! println!("{} exports {}_run", lib.library.display(), lib.prefix);
//! # Ok(())
//! # }
//! ```
//!
//! The library holds the executable's fused kernels (compiled by the same emitter as the
//! JIT, as position-independent code), its plan, the constants and the variables' current
//! values from the session, linked with the static AOT runtime (`flumen-aot-runtime`). It
//! depends only on libc, libm and libpthread (and the dynamic loader), exports only the
//! model's entry points, and computes the same bits as the session's JIT. Its C API is
//! described in the generated header (and in `flumen_compiler::aot::glue`).
//!
//! # Finding the runtime library
//! [`runtime_library`] uses, in order: the path in `FLUMEN_AOT_RUNTIME`; in a source
//! checkout (the workspace this crate was built from still exists), the archive that
//! `cargo build -p flumen-aot-runtime` reports (a no-op when it is up to date, so a fresh
//! clone needs no manual step and an edited runtime is rebuilt); else a
//! `libflumen_aot_runtime.a` next to the running executable (an installed `flumen`). That
//! build uses the profile this crate was built with ([`RUNTIME_PROFILE`]): `release` for a
//! release `flumen`, `dev` for debug builds (dependencies such as the GEMM are optimised in
//! dev builds too). The first such build compiles the runtime's crates for that profile
//! and feature set (a few minutes on two cores); later ones are no-ops. The integration
//! tests skip it: they pass [`ExportOptions::runtime_lib`] the archive `cargo test`
//! already built (`flumen-aot-runtime` is a dev-dependency).

use crate::Session;
use flumen_compiler::CompileReport;
use flumen_compiler::aot::{self, LinkOptions};
use flumen_frontend::{GraphError, NodeId, Op, Result, Tensor, TensorType};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The runtime library's file name.
pub const RUNTIME_LIB_NAME: &str = "libflumen_aot_runtime.a";

/// Options of [`compile_library`].
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// C identifier prefix of the entry points [default: from the library's file name,
    /// `libmnist.so` → `mnist`].
    pub prefix: Option<String>,
    /// Also write the C header here.
    pub header: Option<PathBuf>,
    /// The static runtime library [default: [`runtime_library`]].
    pub runtime_lib: Option<PathBuf>,
    /// The C compiler driver [default: `$CC`, else `cc`].
    pub cc: Option<String>,
    /// Keep the intermediate files (kernel object, glue C, version script) here.
    pub keep_dir: Option<PathBuf>,
}

/// What [`compile_library`] built.
#[derive(Clone, Debug)]
pub struct LibraryReport {
    /// The shared library.
    pub library: PathBuf,
    /// The C header's text (also written to [`ExportOptions::header`] if given).
    pub header: String,
    /// The entry points' prefix.
    pub prefix: String,
    /// Inputs in order.
    pub inputs: Vec<(String, TensorType)>,
    /// Outputs in order.
    pub outputs: Vec<(String, TensorType)>,
    /// Variables in index order (the state's variables).
    pub variables: Vec<(String, TensorType)>,
    /// The compiler's report (kernels, epilogues, interpreted steps, arena).
    pub compile: CompileReport,
}

fn invalid(msg: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("aot: {msg}"))
}

/// The default prefix for a library file: its stem without a leading `lib`, with every
/// character that is not a C identifier character replaced by `_`.
pub fn prefix_for(library: &Path) -> String {
    let stem = library
        .file_name()
        .and_then(|s| s.to_str())
        .map(|s| s.split('.').next().unwrap_or(s))
        .unwrap_or("model");
    let stem = stem
        .strip_prefix("lib")
        .filter(|s| !s.is_empty())
        .unwrap_or(stem);
    let mut p: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if p.is_empty() || p.starts_with(|c: char| c.is_ascii_digit()) {
        p.insert_str(0, "model_");
    }
    p
}

/// Compile what `fetches` need, with `feeds` as inputs (in order), into the shared library
/// `library`. Every placeholder the fetches depend on must be among the feeds. The
/// session's variables (initialised here if needed) become the library's initial weights,
/// and its random counters the state's starting counters. Fetching an assign or a train op
/// makes each call of `<prefix>_run` a training step on the state's variables.
pub fn compile_library(
    sess: &mut Session,
    feeds: &[&Tensor],
    fetches: &[&Tensor],
    library: impl AsRef<Path>,
    opts: &ExportOptions,
) -> Result<LibraryReport> {
    let library = library.as_ref();
    let graph = sess.graph().clone();
    let def = graph.def();
    let mut feed_ids: Vec<NodeId> = Vec::new();
    for t in feeds {
        if !graph.same_graph(t.graph()) {
            return Err(invalid(format!(
                "feed `{}` belongs to another graph",
                t.name()
            )));
        }
        if !matches!(t.op(), Op::Placeholder { .. }) {
            return Err(invalid(format!(
                "feed `{}` is a {} node; only placeholders can be inputs",
                t.name(),
                t.op().name()
            )));
        }
        if feed_ids.contains(&t.id()) {
            return Err(invalid(format!("feed `{}` is listed twice", t.name())));
        }
        feed_ids.push(t.id());
    }
    let mut fetch_ids = Vec::new();
    for t in fetches {
        if !graph.same_graph(t.graph()) {
            return Err(invalid(format!(
                "fetch `{}` belongs to another graph",
                t.name()
            )));
        }
        fetch_ids.push(t.id());
    }
    if fetch_ids.is_empty() {
        return Err(invalid("nothing to fetch: give at least one output"));
    }
    let needed = def.reachable(&fetch_ids, false);
    for (id, node) in def.iter() {
        if needed[id.0] && matches!(node.op, Op::Placeholder { .. }) && !feed_ids.contains(&id) {
            return Err(invalid(format!(
                "placeholder `{}` ({}) must be an input: the fetches depend on it",
                node.name, node.ty
            )));
        }
    }
    sess.initialize()?;
    let prefix = opts.prefix.clone().unwrap_or_else(|| prefix_for(library));
    let art = aot::emit(&def, &feed_ids, &fetch_ids, sess.state(), &prefix)?;
    let runtime_lib = match &opts.runtime_lib {
        Some(p) => p.clone(),
        None => runtime_library()?,
    };
    let mut link = LinkOptions::new(runtime_lib);
    if let Some(cc) = &opts.cc {
        link.cc = cc.clone();
    }
    link.keep_dir = opts.keep_dir.clone();
    aot::link(&art, library, &link)?;
    if let Some(h) = &opts.header {
        std::fs::write(h, &art.header).map_err(|e| GraphError::Io {
            path: h.display().to_string(),
            msg: format!("writing the header: {e}"),
        })?;
    }
    let plan = &art.plan;
    Ok(LibraryReport {
        library: library.to_path_buf(),
        header: art.header.clone(),
        prefix,
        inputs: plan.feeds.clone(),
        outputs: plan
            .fetches
            .iter()
            .map(|(n, _, t)| (n.clone(), t.clone()))
            .collect(),
        variables: plan
            .variables
            .iter()
            .map(|d| (d.name.clone(), d.ty.clone()))
            .collect(),
        compile: art.report,
    })
}

/// The static AOT runtime library (see the [module docs](self) for where it comes from).
/// The result is cached for the process.
pub fn runtime_library() -> Result<PathBuf> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_runtime_library)
        .clone()
        .map_err(invalid)
}

fn find_runtime_library() -> std::result::Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FLUMEN_AOT_RUNTIME") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("FLUMEN_AOT_RUNTIME={} is not a file", p.display()))
        };
    }
    // A source checkout: let cargo bring the archive up to date (a no-op when it is).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut why = String::new();
    if workspace.join("aot-runtime").join("Cargo.toml").is_file() {
        match build_runtime_library(workspace) {
            Ok(p) => return Ok(p),
            Err(e) => why = format!(" ({e})"),
        }
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(RUNTIME_LIB_NAME);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "cannot find {RUNTIME_LIB_NAME}{why}: set FLUMEN_AOT_RUNTIME to its path or put it \
         next to the executable (build it with `cargo build --release -p \
         flumen-aot-runtime` in a Flumen checkout)"
    ))
}

/// The cargo profile the runtime is built with: `release` when this crate was built
/// without debug assertions, else `dev`.
pub const RUNTIME_PROFILE: &str = if cfg!(debug_assertions) {
    "dev"
} else {
    "release"
};

/// `cargo build --profile RUNTIME_PROFILE -p flumen-aot-runtime` in `workspace`, returning
/// the archive's path as cargo reports it.
fn build_runtime_library(workspace: &Path) -> std::result::Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--profile",
            RUNTIME_PROFILE,
            "-p",
            "flumen-aot-runtime",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo to build the AOT runtime: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the AOT runtime (`cargo build --profile {RUNTIME_PROFILE} -p \
             flumen-aot-runtime`) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Each artifact is one JSON line listing its files; take the archive's path (the
    // string that ends with the library's name).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let suffix = format!("{RUNTIME_LIB_NAME}\"");
    stdout
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\""))
        .find_map(|l| {
            let end = l.find(&suffix)? + RUNTIME_LIB_NAME.len();
            let start = l[..end].rfind('"')? + 1;
            Some(PathBuf::from(&l[start..end]))
        })
        .filter(|p| p.is_file())
        .ok_or_else(|| format!("cargo built the AOT runtime but did not report {RUNTIME_LIB_NAME}"))
}
