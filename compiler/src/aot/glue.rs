//! The C side of an AOT library: the public header (entry points, error codes, and every
//! input, output and variable as constants) and the glue C file that defines the entry
//! points by forwarding to the static AOT runtime (`flumen_rt_*`).
//!
//! # The C API of a library with prefix `p`
//! ```c
//! int  p_state_new(p_state **out);                       /* threads = all cores */
//! int  p_state_new_with_threads(p_state **out, size_t threads);
//! void p_state_free(p_state *s);
//! int  p_run(p_state *s, const void *const *inputs, const size_t *input_bytes,
//!            void *const *outputs, const size_t *output_bytes);
//! int  p_read_variable(const p_state *s, size_t i, void *dst, size_t bytes);
//! int  p_write_variable(p_state *s, size_t i, const void *src, size_t bytes);
//! int  p_reset(p_state *s);                              /* variables back to the embedded weights */
//! const char *p_error_message(int code);                 /* static text per code */
//! const char *p_last_error(const p_state *s);            /* detail of the state's last error */
//! const char *p_info(void);                              /* JSON: inputs, outputs, variables */
//! ```
//! Every function returns `FLUMEN_OK` (0) or a positive `FLUMEN_E_*` code.

use super::RUNTIME_ABI_VERSION;
use flumen_frontend::DType;
use flumen_frontend::op::TensorType;
use flumen_runtime::exec::Plan;

/// The error codes shared by every library (name, value, meaning).
pub const ERROR_CODES: [(&str, i32, &str); 9] = [
    ("FLUMEN_OK", 0, "success"),
    ("FLUMEN_E_NULL", 1, "a required pointer argument is NULL"),
    (
        "FLUMEN_E_SIZE",
        2,
        "a byte size does not match the tensor's size",
    ),
    ("FLUMEN_E_INDEX", 3, "a variable index is out of range"),
    (
        "FLUMEN_E_ALIGN",
        4,
        "a data pointer is not aligned to its element size",
    ),
    (
        "FLUMEN_E_RUNTIME",
        5,
        "an operation failed while running (see p_last_error)",
    ),
    (
        "FLUMEN_E_CORRUPT",
        6,
        "the library's embedded plan or data is invalid",
    ),
    (
        "FLUMEN_E_RESOURCE",
        7,
        "memory or threads could not be allocated",
    ),
    (
        "FLUMEN_E_PANIC",
        8,
        "internal error (a bug in Flumen; see p_last_error)",
    ),
];

/// Whether `s` is a C identifier.
pub fn is_c_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The exported entry points of a library with prefix `p`.
pub fn entry_points(p: &str) -> Vec<String> {
    [
        "state_new",
        "state_new_with_threads",
        "state_free",
        "run",
        "read_variable",
        "write_variable",
        "reset",
        "error_message",
        "last_error",
        "info",
    ]
    .iter()
    .map(|f| format!("{p}_{f}"))
    .collect()
}

/// Symbol of kernel `i` in the object file.
pub fn kernel_symbol(p: &str, i: usize) -> String {
    format!("{p}__flumen_k{i}")
}

/// Symbol of the encoded plan.
pub fn plan_symbol(p: &str) -> String {
    format!("{p}__flumen_plan")
}

/// Symbol of the data blob.
pub fn data_symbol(p: &str) -> String {
    format!("{p}__flumen_data")
}

/// The dtype's header constant.
fn dtype_const(d: DType) -> String {
    format!("FLUMEN_DTYPE_{}", d.name().to_ascii_uppercase())
}

/// An upper-case C identifier fragment for a node name (`eval/add_1` → `EVAL_ADD_1`).
fn ident(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// JSON string literal contents (names are `[A-Za-z0-9_./-]`, but escape anyway).
fn json_str(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn tensors(plan: &Plan) -> [(&'static str, Vec<(String, TensorType)>); 3] {
    [
        ("INPUT", plan.feeds.clone()),
        (
            "OUTPUT",
            plan.fetches
                .iter()
                .map(|(n, _, t)| (n.clone(), t.clone()))
                .collect(),
        ),
        (
            "VARIABLE",
            plan.variables
                .iter()
                .map(|d| (d.name.clone(), d.ty.clone()))
                .collect(),
        ),
    ]
}

/// The model description returned by `p_info()`: JSON with `inputs`, `outputs` and
/// `variables`, each a list of `{name, dtype, shape, bytes}` in index order.
pub fn info_json(prefix: &str, plan: &Plan) -> String {
    let mut o = format!("{{\"prefix\": \"{}\"", json_str(prefix));
    for (kind, list) in tensors(plan) {
        o.push_str(&format!(", \"{}s\": [", kind.to_ascii_lowercase()));
        for (i, (name, ty)) in list.iter().enumerate() {
            let shape: Vec<String> = ty.shape.iter().map(|d| d.to_string()).collect();
            o.push_str(&format!(
                "{}{{\"name\": \"{}\", \"dtype\": \"{}\", \"shape\": [{}], \"bytes\": {}}}",
                if i > 0 { ", " } else { "" },
                json_str(name),
                ty.dtype.name(),
                shape.join(", "),
                ty.numel() * ty.dtype.size_bytes()
            ));
        }
        o.push(']');
    }
    o.push('}');
    o
}

/// A C string literal of `s`.
fn c_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => o.push(c),
            c => o.push_str(&format!("\\{:03o}", c as u32 & 0xff)),
        }
    }
    o.push('"');
    o
}

/// The public C header of a library with prefix `p`.
pub fn header(p: &str, plan: &Plan) -> String {
    let up = p.to_ascii_uppercase();
    let guard = format!("{up}_FLUMEN_H");
    let mut h = format!(
        "/* Generated by `flumen compile`: the C interface of the Flumen model `{p}`.\n\
         \x20*\n\
         \x20* Create a state (variables initialised from the embedded weights), run it with one\n\
         \x20* buffer per input and output (row-major, native byte order, aligned to the element\n\
         \x20* size), and free it. Each function returns FLUMEN_OK (0) or a FLUMEN_E_* code.\n\
         \x20* Thread safety: the library has no global mutable state; a state may be used by\n\
         \x20* one thread at a time, and different states may run concurrently. A state owns\n\
         \x20* its variables, its scratch memory and its worker threads. (Process-wide there are\n\
         \x20* only the CPU cache sizes, detected once, and per-thread scratch caches.)\n\
         \x20* Inputs may alias each other; outputs are written after the whole step ran.\n\
         \x20* If {p}_run fails with FLUMEN_E_RUNTIME, variables may be partially updated.\n\
         \x20*/\n\
         #ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n\
         #ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
    );
    h.push_str("#ifndef FLUMEN_COMMON_DEFINED\n#define FLUMEN_COMMON_DEFINED\n");
    for (name, v, what) in ERROR_CODES {
        let what = what.replace("p_last_error", &format!("{p}_last_error"));
        h.push_str(&format!("#define {name} {v} /* {what} */\n"));
    }
    for (i, d) in DType::ALL.iter().enumerate() {
        h.push_str(&format!(
            "#define {} {i} /* {}, {} byte(s) */\n",
            dtype_const(*d),
            d.name(),
            d.size_bytes()
        ));
    }
    h.push_str("#endif\n\n");
    for (kind, list) in tensors(plan) {
        h.push_str(&format!("#define {up}_NUM_{kind}S {}\n", list.len()));
    }
    h.push('\n');
    for (kind, list) in tensors(plan) {
        let mut seen = std::collections::HashSet::new();
        for (i, (name, ty)) in list.iter().enumerate() {
            let base = format!("{up}_{kind}_{i}");
            let dims: Vec<String> = ty.shape.iter().map(|d| d.to_string()).collect();
            h.push_str(&format!(
                "/* {} {i}: `{name}`, {ty} */\n",
                kind.to_lowercase()
            ));
            h.push_str(&format!("#define {base}_NAME {}\n", c_str(name)));
            h.push_str(&format!("#define {base}_DTYPE {}\n", dtype_const(ty.dtype)));
            h.push_str(&format!("#define {base}_RANK {}\n", ty.shape.len()));
            h.push_str(&format!("#define {base}_SHAPE {{{}}}\n", dims.join(", ")));
            h.push_str(&format!("#define {base}_NUMEL {}\n", ty.numel()));
            h.push_str(&format!(
                "#define {base}_BYTES {}\n",
                ty.numel() * ty.dtype.size_bytes()
            ));
            let by_name = format!("{up}_{kind}_IDX_{}", ident(name));
            if seen.insert(by_name.clone()) {
                h.push_str(&format!("#define {by_name} {i} /* index of `{name}` */\n"));
            }
            h.push('\n');
        }
    }
    h.push_str(&format!(
        "/* An instance of the model: variables, scratch memory, worker threads. */\n\
         typedef struct {p}_state {p}_state;\n\n\
         /* Create a state using every core; *out is set on success. */\n\
         int {p}_state_new({p}_state **out);\n\
         /* Create a state with `threads` worker threads (0 = every core). */\n\
         int {p}_state_new_with_threads({p}_state **out, size_t threads);\n\
         /* Free a state (NULL is ignored). */\n\
         void {p}_state_free({p}_state *s);\n\
         /* One step: inputs[i] holds {up}_INPUT_i_BYTES bytes (input_bytes[i] must say so),\n\
          * outputs[i] receives {up}_OUTPUT_i_BYTES bytes; assigns update the variables. */\n\
         int {p}_run({p}_state *s, const void *const *inputs, const size_t *input_bytes,\n\
         \x20          void *const *outputs, const size_t *output_bytes);\n\
         /* Copy variable i ({up}_VARIABLE_i_BYTES bytes) out of / into the state. */\n\
         int {p}_read_variable(const {p}_state *s, size_t i, void *dst, size_t bytes);\n\
         int {p}_write_variable({p}_state *s, size_t i, const void *src, size_t bytes);\n\
         /* Reset variables and random counters to the embedded values. */\n\
         int {p}_reset({p}_state *s);\n\
         /* Static description of an error code. */\n\
         const char *{p}_error_message(int code);\n\
         /* Details of the state's last error (\"\" if none); valid until the next call. */\n\
         const char *{p}_last_error(const {p}_state *s);\n\
         /* JSON description of inputs, outputs and variables (name, dtype, shape, bytes). */\n\
         const char *{p}_info(void);\n\n\
         #ifdef __cplusplus\n}}\n#endif\n\n#endif /* {guard} */\n"
    ));
    h
}

/// The glue C file: the kernel table, the model descriptor and the entry points.
pub fn glue_c(p: &str, plan: &Plan, plan_len: usize, data_len: usize) -> String {
    let mut c = format!(
        "/* Generated by Flumen: entry points of the model `{p}` (see the header). */\n\
         #include <stddef.h>\n#include <stdint.h>\n\n\
         #define EXPORT __attribute__((visibility(\"default\")))\n\
         typedef void (*flumen_kernel_fn)(void *const *args, size_t begin, size_t end);\n\
         struct flumen_model_desc {{\n\
         \x20   uint64_t abi_version;\n\
         \x20   const unsigned char *plan; size_t plan_len;\n\
         \x20   const unsigned char *data; size_t data_len;\n\
         \x20   const flumen_kernel_fn *kernels; size_t n_kernels;\n\
         \x20   size_t n_inputs; size_t n_outputs;\n\
         }};\n\
         typedef struct {p}_state {p}_state;\n\n\
         extern const unsigned char {plan}[];\nextern const unsigned char {data}[];\n",
        plan = plan_symbol(p),
        data = data_symbol(p),
    );
    for i in 0..plan.kernels {
        c.push_str(&format!(
            "extern void {}(void *const *, size_t, size_t);\n",
            kernel_symbol(p, i)
        ));
    }
    let table: Vec<String> = (0..plan.kernels).map(|i| kernel_symbol(p, i)).collect();
    c.push_str(&format!(
        "static const flumen_kernel_fn kernels[{}] = {{{}}};\n\n",
        plan.kernels.max(1),
        if table.is_empty() {
            "0".to_string()
        } else {
            table.join(", ")
        }
    ));
    c.push_str(&format!(
        "static const struct flumen_model_desc model = {{\n\
         \x20   {RUNTIME_ABI_VERSION}u, {plan}, {plan_len}u, {data}, {data_len}u, kernels, {nk}u, {ni}u, {no}u\n\
         }};\n\
         static const char info[] = {info};\n\n\
         int flumen_rt_state_new(const struct flumen_model_desc *m, size_t threads, void **out);\n\
         void flumen_rt_state_free(void *s);\n\
         int flumen_rt_run(void *s, const void *const *in, const size_t *in_bytes, size_t n_in,\n\
         \x20                 void *const *out, const size_t *out_bytes, size_t n_out);\n\
         int flumen_rt_read_variable(const void *s, size_t i, void *dst, size_t bytes);\n\
         int flumen_rt_write_variable(void *s, size_t i, const void *src, size_t bytes);\n\
         int flumen_rt_reset(void *s);\n\
         const char *flumen_rt_error_message(int code);\n\
         const char *flumen_rt_last_error(const void *s);\n\n\
         EXPORT int {p}_state_new({p}_state **out) {{\n\
         \x20   return flumen_rt_state_new(&model, 0, (void **)out);\n}}\n\
         EXPORT int {p}_state_new_with_threads({p}_state **out, size_t threads) {{\n\
         \x20   return flumen_rt_state_new(&model, threads, (void **)out);\n}}\n\
         EXPORT void {p}_state_free({p}_state *s) {{ flumen_rt_state_free(s); }}\n\
         EXPORT int {p}_run({p}_state *s, const void *const *inputs, const size_t *input_bytes,\n\
         \x20          void *const *outputs, const size_t *output_bytes) {{\n\
         \x20   return flumen_rt_run(s, inputs, input_bytes, {ni}u, outputs, output_bytes, {no}u);\n}}\n\
         EXPORT int {p}_read_variable(const {p}_state *s, size_t i, void *dst, size_t bytes) {{\n\
         \x20   return flumen_rt_read_variable(s, i, dst, bytes);\n}}\n\
         EXPORT int {p}_write_variable({p}_state *s, size_t i, const void *src, size_t bytes) {{\n\
         \x20   return flumen_rt_write_variable(s, i, src, bytes);\n}}\n\
         EXPORT int {p}_reset({p}_state *s) {{ return flumen_rt_reset(s); }}\n\
         EXPORT const char *{p}_error_message(int code) {{ return flumen_rt_error_message(code); }}\n\
         EXPORT const char *{p}_last_error(const {p}_state *s) {{ return flumen_rt_last_error(s); }}\n\
         EXPORT const char *{p}_info(void) {{ return info; }}\n",
        plan = plan_symbol(p),
        data = data_symbol(p),
        nk = plan.kernels,
        ni = plan.feeds.len(),
        no = plan.fetches.len(),
        info = c_str(&info_json(p, plan)),
    ));
    c
}
