//! The emitter is generic over `cranelift_module::Module`: the same kernels compile into a
//! position-independent object file (the AOT path), importing the C math-library symbols of
//! `codegen::math::IMPORTED_SYMBOLS` by name.

mod codegen_util;

use codegen_util::*;
use cranelift_object::{ObjectBuilder, ObjectModule};
use flumen_compiler::codegen::math::IMPORTED_SYMBOLS;
use flumen_compiler::codegen::{IsaOptions, declare_and_define, native_isa};
use flumen_frontend::DType;
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};

#[test]
fn kernels_compile_to_a_pic_object() {
    let isa = native_isa(&IsaOptions {
        is_pic: true,
        verify: true,
    })
    .unwrap();
    let builder = ObjectBuilder::new(
        isa,
        "flumen_kernels",
        cranelift_module::default_libcall_names(),
    )
    .unwrap();
    let mut module = ObjectModule::new(builder);
    // f32 softmax-like row kernel (vector code, no imports).
    let mut p0 = PB::new();
    let x = p0.load(0, DType::F32);
    let e = p0.un(UnaryOp::Exp, x);
    let mut p1 = PB::new();
    let s = p1.result(0, DType::F32);
    let k1 = kernel(
        "row_sum_exp",
        &[8],
        &[100],
        vec![
            acc(0, DType::F32, 0, &[100], &[1]),
            acc(1, DType::F32, 0, &[1], &[]),
        ],
        vec![p0.reduce(ReduceOp::Sum, e), p1.store(false, vec![(1, s)])],
    );
    // f64 transcendentals and f32 pow/mod import exp, tanh, erf, pow and fmod.
    let mut pb = PB::new();
    let a = pb.load(0, DType::F64);
    let b = pb.un(UnaryOp::Exp, a);
    let c = pb.un(UnaryOp::Tanh, b);
    let d = pb.un(UnaryOp::Gelu, c);
    let k2 = kernel(
        "f64_math",
        &[33],
        &[],
        vec![
            acc(0, DType::F64, 0, &[1], &[]),
            acc(1, DType::F64, 0, &[1], &[]),
        ],
        vec![pb.store(false, vec![(1, d)])],
    );
    let mut pb = PB::new();
    let a = pb.load(0, DType::F32);
    let p = pb.bin(BinaryOp::Pow, a, a);
    let m = pb.bin(BinaryOp::Mod, p, a);
    let k3 = kernel(
        "f32_pow_mod",
        &[17],
        &[],
        vec![
            acc(0, DType::F32, 0, &[1], &[]),
            acc(1, DType::F32, 0, &[1], &[]),
        ],
        vec![pb.store(false, vec![(1, m)])],
    );
    for (k, name) in [
        (&k1, "flumen_row_sum_exp"),
        (&k2, "flumen_f64_math"),
        (&k3, "flumen_f32_pow_mod"),
    ] {
        declare_and_define(&mut module, k, name).unwrap();
    }
    let bytes = module.finish().emit().unwrap();
    assert!(bytes.len() > 1000);
    let has = |s: &str| {
        bytes
            .windows(s.len() + 1)
            .any(|w| &w[..s.len()] == s.as_bytes() && w[s.len()] == 0)
    };
    for name in [
        "flumen_row_sum_exp",
        "flumen_f64_math",
        "flumen_f32_pow_mod",
    ] {
        assert!(has(name), "exported {name}");
    }
    for sym in IMPORTED_SYMBOLS {
        if ["exp", "tanh", "erf", "pow", "fmod"].contains(&sym.name()) {
            assert!(has(sym.name()), "imported {}", sym.name());
        }
    }
    if cfg!(target_os = "linux") {
        assert_eq!(&bytes[..4], b"\x7fELF");
    }
}
