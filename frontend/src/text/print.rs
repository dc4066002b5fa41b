//! Printing the text IR: `impl Display for GraphDef` and the attribute-value syntax shared
//! with the DOT export (see the [module docs](super) for the format).

use crate::graph::{GraphDef, NodeId};
use crate::op::TensorType;
use crate::op::attrs::{AttrValue, attrs};
use crate::value::Value;
use std::fmt::{self, Write};

/// The first line of every printed graph (a comment to the parser).
pub const HEADER: &str = "# flumen graph v1";

/// An f64 as `{:?}` prints it (always with a `.`, an exponent, `inf` or `NaN`), or
/// `nan:0x...` with its bits for a NaN other than `f64::NAN`.
pub(super) fn write_f64(out: &mut dyn Write, x: f64) -> fmt::Result {
    if x.is_nan() && x.to_bits() != f64::NAN.to_bits() {
        write!(out, "nan:0x{:016x}", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// An f32 as `{:?}` prints it, or `nan:0x...` with its bits for a NaN other than `f32::NAN`.
pub(super) fn write_f32(out: &mut dyn Write, x: f32) -> fmt::Result {
    if x.is_nan() && x.to_bits() != f32::NAN.to_bits() {
        write!(out, "nan:0x{:08x}", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// Write `items` separated by `, `.
fn write_list<T>(
    out: &mut dyn Write,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut dyn Write, T) -> fmt::Result,
) -> fmt::Result {
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        item(out, x)?;
    }
    Ok(())
}

/// A tensor literal: its type, then every element in row-major order.
fn write_tensor(out: &mut dyn Write, v: &Value) -> fmt::Result {
    write!(out, "{} [", TensorType::new(v.dtype(), v.shape()))?;
    match v {
        Value::F32(a) => write_list(out, a.iter(), |o, &x| write_f32(o, x)),
        Value::F64(a) => write_list(out, a.iter(), |o, &x| write_f64(o, x)),
        Value::I32(a) => write_list(out, a.iter(), |o, x| write!(o, "{x}")),
        Value::I64(a) => write_list(out, a.iter(), |o, x| write!(o, "{x}")),
        Value::U8(a) => write_list(out, a.iter(), |o, x| write!(o, "{x}")),
        Value::Bool(a) => write_list(out, a.iter(), |o, x| write!(o, "{x}")),
    }?;
    out.write_str("]")
}

fn write_attr_value(out: &mut dyn Write, v: &AttrValue) -> fmt::Result {
    match v {
        AttrValue::Bool(b) => write!(out, "{b}"),
        AttrValue::Int(i) => write!(out, "{i}"),
        AttrValue::Float(x) => write_f64(out, *x),
        AttrValue::Ints(v) => {
            out.write_str("[")?;
            write_list(out, v, |o, x| write!(o, "{x}"))?;
            out.write_str("]")
        }
        AttrValue::Pairs(v) => {
            out.write_str("[")?;
            write_list(out, v, |o, (a, b)| write!(o, "({a}, {b})"))?;
            out.write_str("]")
        }
        AttrValue::Triples(v) => {
            out.write_str("[")?;
            write_list(out, v, |o, (a, b, c)| write!(o, "({a}, {b}, {c})"))?;
            out.write_str("]")
        }
        AttrValue::DType(d) => write!(out, "{d}"),
        AttrValue::Tensor(t) => write_tensor(out, t),
    }
}

/// An attribute value in text-IR syntax (`[1, 2]`, `f32[2] [1.0, 2.0]`, `nan:0x...`).
pub fn format_attr_value(v: &AttrValue) -> String {
    let mut s = String::new();
    write_attr_value(&mut s, v).expect("writing to a String cannot fail");
    s
}

fn write_refs(out: &mut dyn Write, def: &GraphDef, ids: &[NodeId]) -> fmt::Result {
    write_list(out, ids, |o, id| match def.get(*id) {
        Some(n) => write!(o, "%{}", n.name),
        // Unreachable for graphs built through `GraphDef::add`; print something unparsable
        // rather than panic in `Display`.
        None => write!(o, "%<missing node {}>", id.0),
    })
}

impl fmt::Display for GraphDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        for n in self.nodes() {
            write!(f, "%{} = {}(", n.name, n.op.name())?;
            write_refs(f, self, &n.inputs)?;
            f.write_str(")")?;
            let attrs = attrs(&n.op);
            if !attrs.is_empty() {
                f.write_str(" {")?;
                write_list(f, &attrs, |o, (k, v)| {
                    write!(o, "{k}=")?;
                    write_attr_value(o, v)
                })?;
                f.write_str("}")?;
            }
            if !n.control_inputs.is_empty() {
                f.write_str(" ^(")?;
                write_refs(f, self, &n.control_inputs)?;
                f.write_str(")")?;
            }
            writeln!(f, " : {}", n.ty)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_always_read_back_as_floats() {
        for (x, s) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (1e-7, "1e-7"),
            (1e300, "1e300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_attr_value(&AttrValue::Float(x)), s);
        }
        let odd = f64::from_bits(0x7ff8_0000_0000_0001);
        assert_eq!(
            format_attr_value(&AttrValue::Float(odd)),
            "nan:0x7ff8000000000001"
        );
        assert_eq!(
            format_attr_value(&AttrValue::Float(-f64::NAN)),
            "nan:0xfff8000000000000"
        );
    }

    #[test]
    fn tensor_literals() {
        let v = Value::from_vec(
            &[2, 2],
            vec![1.0f32, -0.0, f32::NAN, f32::from_bits(0x7fc0_0001)],
        )
        .unwrap();
        assert_eq!(
            format_attr_value(&AttrValue::Tensor(v)),
            "f32[2,2] [1.0, -0.0, NaN, nan:0x7fc00001]"
        );
        let v = Value::from_vec::<bool>(&[0, 3], vec![]).unwrap();
        assert_eq!(format_attr_value(&AttrValue::Tensor(v)), "bool[0,3] []");
        assert_eq!(
            format_attr_value(&AttrValue::Tensor(Value::scalar(-7i64))),
            "i64[] [-7]"
        );
    }

    #[test]
    fn lists() {
        assert_eq!(format_attr_value(&AttrValue::Ints(vec![])), "[]");
        assert_eq!(
            format_attr_value(&AttrValue::Pairs(vec![(1, 2), (3, 4)])),
            "[(1, 2), (3, 4)]"
        );
        assert_eq!(
            format_attr_value(&AttrValue::Triples(vec![(0, -1, 3)])),
            "[(0, -1, 3)]"
        );
    }
}
