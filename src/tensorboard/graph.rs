//! A Flumen graph as a `tensorflow.GraphDef`, the payload of `Event.graph_def`, so that
//! TensorBoard's Graphs tab draws it: one `NodeDef` per node with its scoped name (TensorBoard
//! groups `/`-scopes into collapsible boxes), the Flumen op name as the op type, data inputs
//! by name and control inputs as `^name`, and attributes: `dtype` (the output dtype),
//! `_output_shapes` (the output shape, which TensorBoard prints on edges) and the op's own
//! attributes.
//!
//! Field numbers (`tensorflow/core/framework/`; checked against TensorBoard 2.21's generated
//! descriptors):
//!
//! - `graph.proto`, `message GraphDef`: `repeated NodeDef node = 1`.
//! - `node_def.proto`, `message NodeDef`: `string name = 1`, `string op = 2`,
//!   `repeated string input = 3` (`"^name"` for a control input),
//!   `map<string, AttrValue> attr = 5` (map entries: `key = 1`, `value = 2`).
//! - `attr_value.proto`, `message AttrValue` (oneof `value`): `ListValue list = 1`,
//!   `bytes s = 2`, `int64 i = 3`, `float f = 4`, `bool b = 5`, `DataType type = 6`,
//!   `TensorShapeProto shape = 7`; `message ListValue`: `repeated int64 i = 3 [packed]`,
//!   `repeated TensorShapeProto shape = 7`.
//! - `tensor_shape.proto`, `message TensorShapeProto`: `repeated Dim dim = 2`;
//!   `message Dim`: `int64 size = 1`.
//! - `types.proto`, `enum DataType`: `DT_FLOAT = 1`, `DT_DOUBLE = 2`, `DT_INT32 = 3`,
//!   `DT_UINT8 = 4`, `DT_INT64 = 9`, `DT_BOOL = 10`.
//!
//! Attributes are written sorted by key (as TensorFlow's deterministic serialization does)
//! and proto3 default scalars outside oneofs are omitted, so small graphs encode to the same
//! bytes as TensorFlow's `SerializeToString(deterministic=True)`.

use super::proto::{Message, Wire, parse};
use crate::{DType, GraphDef, GraphError, Result};
use flumen_frontend::dot::short_attr_text;
use flumen_frontend::op::attrs::{AttrValue, attrs};

/// `tensorflow.DataType` of a Flumen dtype (`types.proto`).
pub fn tf_dtype(d: DType) -> u64 {
    match d {
        DType::F32 => 1,
        DType::F64 => 2,
        DType::I32 => 3,
        DType::U8 => 4,
        DType::I64 => 9,
        DType::Bool => 10,
    }
}

/// A `TensorShapeProto` with one `Dim` per axis (an empty message for a scalar).
fn shape_proto(shape: &[usize]) -> Message {
    let mut s = Message::new();
    for &d in shape {
        let mut dim = Message::new();
        if d != 0 {
            dim.int64(1, d as i64);
        }
        s.message(2, &dim);
    }
    s
}

/// A Flumen attribute as an `AttrValue`: booleans, integers, floats, integer lists and
/// dtypes natively; slices, pairs and tensors as their text-IR spelling (tensors larger
/// than a few elements as their type).
fn attr_value(v: &AttrValue) -> Message {
    let mut m = Message::new();
    match v {
        AttrValue::Bool(b) => m.bool(5, *b),
        AttrValue::Int(i) => m.int64(3, *i),
        AttrValue::Float(f) => m.float(4, *f as f32),
        AttrValue::DType(d) => m.varint(6, tf_dtype(*d)),
        AttrValue::Ints(is) => {
            let mut list = Message::new();
            list.packed_varints(3, is.iter().map(|&i| i as u64));
            m.message(1, &list)
        }
        other => m.string(2, &short_attr_text(other)),
    };
    m
}

/// The attribute map of node `n`, sorted by key.
fn node_attrs(n: &flumen_frontend::Node) -> Vec<(String, Message)> {
    let mut out: Vec<(String, Message)> = Vec::new();
    let mut shapes = Message::new();
    shapes.message(7, &shape_proto(&n.ty.shape));
    let mut output_shapes = Message::new();
    output_shapes.message(1, &shapes);
    out.push(("_output_shapes".into(), output_shapes));
    let mut dtype = Message::new();
    dtype.varint(6, tf_dtype(n.ty.dtype));
    out.push(("dtype".into(), dtype));
    for (key, v) in attrs(&n.op) {
        // The output dtype is already `dtype`; Flumen's own `dtype` attributes (placeholder,
        // cast, random) always equal it.
        if key != "dtype" && !key.starts_with('_') {
            out.push((key.to_string(), attr_value(&v)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `def` as a serialized `tensorflow.GraphDef`.
pub fn encode_graph(def: &GraphDef) -> Vec<u8> {
    let mut g = Message::new();
    for n in def.nodes() {
        let mut node = Message::new();
        node.string(1, &n.name).string(2, n.op.name());
        for &i in &n.inputs {
            node.string(3, &def.node(i).name);
        }
        for &c in &n.control_inputs {
            node.string(3, &format!("^{}", def.node(c).name));
        }
        for (key, value) in node_attrs(n) {
            let mut entry = Message::new();
            entry.string(1, &key).message(2, &value);
            node.message(5, &entry);
        }
        g.message(1, &node);
    }
    g.into_bytes()
}

/// A decoded `NodeDef`: name, op, inputs and attribute names (for checks and tools).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TfNode {
    /// `NodeDef.name`.
    pub name: String,
    /// `NodeDef.op`.
    pub op: String,
    /// `NodeDef.input` (`^name` for control inputs).
    pub inputs: Vec<String>,
    /// The keys of `NodeDef.attr`, in file order.
    pub attr_keys: Vec<String>,
}

fn text(b: &[u8], what: &str) -> Result<String> {
    String::from_utf8(b.to_vec())
        .map_err(|e| GraphError::invalid(format!("GraphDef: {what} is not UTF-8 ({e})")))
}

/// Decode the nodes of a serialized `tensorflow.GraphDef` (names, ops, inputs, attr keys).
pub fn decode_graph(bytes: &[u8]) -> Result<Vec<TfNode>> {
    let mut nodes = Vec::new();
    for (f, v) in parse(bytes)? {
        let (1, Wire::Len(nb)) = (f, v) else {
            continue;
        };
        let mut node = TfNode {
            name: String::new(),
            op: String::new(),
            inputs: Vec::new(),
            attr_keys: Vec::new(),
        };
        for (f, v) in parse(nb)? {
            match (f, v) {
                (1, Wire::Len(s)) => node.name = text(s, "NodeDef.name")?,
                (2, Wire::Len(s)) => node.op = text(s, "NodeDef.op")?,
                (3, Wire::Len(s)) => node.inputs.push(text(s, "NodeDef.input")?),
                (5, Wire::Len(entry)) => {
                    for (f, v) in parse(entry)? {
                        if let (1, Wire::Len(k)) = (f, v) {
                            node.attr_keys.push(text(k, "NodeDef.attr key")?);
                        }
                    }
                }
                _ => {}
            }
        }
        nodes.push(node);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;

    /// `layer1/w` (a variable with its initial value), a placeholder, a product and a
    /// `no_op` with a control input.
    fn small_graph() -> Graph {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[2]).unwrap();
        let w = {
            let _s = g.scope("layer1");
            g.variable("w", ndarray::arr1(&[1.0f32, 2.0])).unwrap()
        };
        let y = (&x * &w).unwrap();
        g.group("done", &[&y]).unwrap();
        g
    }

    /// TensorFlow 2.21's `GraphDef.SerializeToString(deterministic=True)` of the same
    /// five `NodeDef`s built with `tensorflow.core.framework.*_pb2` (names, ops, inputs
    /// with `^mul`, `_output_shapes`, `dtype` `DT_FLOAT`/`DT_BOOL`, `shape` as a list of
    /// ints, `value` as a string, `trainable` as a bool).
    const TF_GRAPH: &str = concat!(
        "0a490a0178120b706c616365686f6c6465722a1a0a0e5f6f75747075745f736861706573",
        "12080a063a04120208022a0b0a056474797065120230012a0e0a05736861706512050a03",
        "1a01020a690a166c61796572312f772f696e697469616c5f76616c75651208636f6e7374",
        "616e742a1a0a0e5f6f75747075745f73686170657312080a063a04120208022a0b0a0564",
        "74797065120230012a1c0a0576616c7565121312116633325b325d205b312e302c20322e",
        "305d0a660a086c61796572312f7712087661726961626c651a166c61796572312f772f69",
        "6e697469616c5f76616c75652a1a0a0e5f6f75747075745f73686170657312080a063a04",
        "120208022a0b0a056474797065120230012a0f0a09747261696e61626c65120228010a40",
        "0a036d756c12036d756c1a01781a086c61796572312f772a1a0a0e5f6f75747075745f73",
        "686170657312080a063a04120208022a0b0a056474797065120230010a380a04646f6e65",
        "12056e6f5f6f701a045e6d756c2a160a0e5f6f75747075745f73686170657312040a023a",
        "002a0b0a0564747970651202300a",
    );

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn encodes_like_tensorflow() {
        assert_eq!(hex(&encode_graph(&small_graph().def())), TF_GRAPH);
    }

    #[test]
    fn decodes_names_ops_inputs_and_attrs() {
        let nodes = decode_graph(&encode_graph(&small_graph().def())).unwrap();
        let summary: Vec<(&str, &str, Vec<&str>)> = nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.op.as_str(),
                    n.inputs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("x", "placeholder", vec![]),
                ("layer1/w/initial_value", "constant", vec![]),
                ("layer1/w", "variable", vec!["layer1/w/initial_value"]),
                ("mul", "mul", vec!["x", "layer1/w"]),
                ("done", "no_op", vec!["^mul"]),
            ]
        );
        assert_eq!(nodes[0].attr_keys, ["_output_shapes", "dtype", "shape"]);
        assert_eq!(nodes[2].attr_keys, ["_output_shapes", "dtype", "trainable"]);
        assert!(decode_graph(&[0x0a, 0x05, 0x0a]).is_err());
    }
}
