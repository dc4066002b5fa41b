//! Linking an AOT library: the kernel object, the compiled glue and the static AOT runtime
//! become one shared library with the system C compiler driver (`cc`).
//!
//! The command is
//! `cc -shared -fPIC -O2 -o OUT glue.c kernels.o libflumen_aot_runtime.a
//!  -Wl,--version-script=exports.map -Wl,--no-undefined -Wl,--gc-sections -Wl,--as-needed
//!  -Wl,--exclude-libs,ALL -Wl,-z,noexecstack -Wl,--strip-debug -static-libgcc -lm -lpthread -lc`:
//! every symbol must resolve (`--no-undefined`), only the entry points are exported (the
//! version script makes everything else local, so two models or the host's own Rust
//! standard library never clash), and `-static-libgcc` folds the unwinder in, so the
//! library needs only libc, libm and libpthread (on glibc ≥ 2.34 the last is part of
//! libc) plus the dynamic loader.

use super::Artifacts;
use flumen_frontend::{GraphError, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to link a library.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// The C compiler driver (default: `$CC`, else `cc`).
    pub cc: String,
    /// The static AOT runtime (`libflumen_aot_runtime.a`).
    pub runtime_lib: PathBuf,
    /// Keep the intermediate files (object, glue, version script) in this directory
    /// instead of a temporary one that is removed afterwards.
    pub keep_dir: Option<PathBuf>,
}

impl LinkOptions {
    /// Options with the default compiler and the given runtime library.
    pub fn new(runtime_lib: impl Into<PathBuf>) -> LinkOptions {
        LinkOptions {
            cc: std::env::var("CC").unwrap_or_else(|_| "cc".into()),
            runtime_lib: runtime_lib.into(),
            keep_dir: None,
        }
    }
}

/// A unique scratch directory name per call in this process.
static SCRATCH: AtomicUsize = AtomicUsize::new(0);

fn io(what: &str, path: &Path, e: std::io::Error) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: format!("aot link: {what}: {e}"),
    }
}

/// Link `art` into the shared library `out` (see the module docs).
pub fn link(art: &Artifacts, out: &Path, opts: &LinkOptions) -> Result<()> {
    if !opts.runtime_lib.is_file() {
        return Err(GraphError::invalid(format!(
            "aot link: the AOT runtime library {} does not exist (build it with \
             `cargo build --release -p flumen-aot-runtime`)",
            opts.runtime_lib.display()
        )));
    }
    let (dir, temporary) = match &opts.keep_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "flumen-aot-{}-{}",
                std::process::id(),
                SCRATCH.fetch_add(1, Ordering::Relaxed)
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io("creating the work directory", &dir, e))?;
    let result = link_in(art, out, opts, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn link_in(art: &Artifacts, out: &Path, opts: &LinkOptions, dir: &Path) -> Result<()> {
    let p = &art.prefix;
    let obj = dir.join(format!("{p}_kernels.o"));
    let glue = dir.join(format!("{p}_glue.c"));
    let map = dir.join(format!("{p}_exports.map"));
    let mut script = String::from("{\n  global:\n");
    for e in &art.exports {
        script.push_str(&format!("    {e};\n"));
    }
    script.push_str("  local: *;\n};\n");
    for (path, bytes) in [
        (&obj, art.object.as_slice()),
        (&glue, art.glue_c.as_bytes()),
        (&map, script.as_bytes()),
    ] {
        std::fs::write(path, bytes).map_err(|e| io("writing", path, e))?;
    }
    let mut cmd = Command::new(&opts.cc);
    cmd.args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(out)
        .arg(&glue)
        .arg(&obj)
        .arg(&opts.runtime_lib)
        .arg(format!("-Wl,--version-script={}", map.display()))
        .args([
            "-Wl,--no-undefined",
            "-Wl,--gc-sections",
            "-Wl,--as-needed",
            "-Wl,--exclude-libs,ALL",
            "-Wl,-z,noexecstack",
            "-Wl,--strip-debug",
            "-static-libgcc",
            "-lm",
            "-lpthread",
            "-lc",
        ]);
    let output = cmd.output().map_err(|e| {
        GraphError::invalid(format!(
            "aot link: cannot run the C compiler `{}`: {e} (install a C toolchain or set CC)",
            opts.cc
        ))
    })?;
    if !output.status.success() {
        return Err(GraphError::invalid(format!(
            "aot link: `{cmd:?}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}
