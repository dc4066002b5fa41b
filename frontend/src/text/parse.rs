//! Parsing the text IR: `impl FromStr for GraphDef` (see the [module docs](super) for the
//! format).
//!
//! Each line is lexed, parsed into an op (through
//! [`op_from_attrs`](crate::op::attrs::op_from_attrs)), inputs and a declared type, and added
//! with [`GraphDef::add`], which runs the op's shape rule; the declared type must equal the
//! inferred one. Every failure is a [`GraphError::Parse`] at the offending token.

use super::lex::{Kind, Token, lex};
use crate::dtype::DType;
use crate::error::GraphError;
use crate::graph::{GraphDef, NodeId, is_valid_name};
use crate::op::attrs::{AttrMap, AttrValue, op_from_attrs};
use crate::op::{Op, TensorType};
use crate::value::{Element, Value};
use std::str::FromStr;

/// The largest magnitude of a dimension or a list entry. Together with the element-count
/// check this keeps every shape rule's arithmetic (products, sums, strided offsets) far from
/// overflow on parsed input.
const MAX_DIM: u64 = i32::MAX as u64;

/// A failure on the line being parsed: 1-based column and message.
type Fail = (usize, String);
type Result<T> = std::result::Result<T, Fail>;

impl FromStr for GraphDef {
    type Err = GraphError;

    /// Parse the text IR. Never panics; errors are [`GraphError::Parse`].
    fn from_str(text: &str) -> std::result::Result<GraphDef, GraphError> {
        let mut def = GraphDef::new();
        // The line each node was defined on, by id, for duplicate-name errors.
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            parse_line(&mut def, line, &lines).map_err(|(column, msg)| GraphError::Parse {
                line: i + 1,
                column,
                msg,
            })?;
            if lines.len() < def.len() {
                lines.push(i + 1);
            }
        }
        Ok(def)
    }
}

/// Parse one line and add its node, if it has one, to `def`.
fn parse_line(def: &mut GraphDef, line: &str, lines: &[usize]) -> Result<()> {
    let toks = lex(line)?;
    if toks.is_empty() {
        return Ok(());
    }
    let mut p = LineParser {
        toks,
        pos: 0,
        end_col: line.chars().count() + 1,
        def,
        lines,
    };
    let node = p.node()?;
    add_node(def, node)
}

/// One parsed line, before it is added to the graph.
struct ParsedNode<'a> {
    name: Token<'a>,
    op_tok: Token<'a>,
    op: Op,
    inputs: Vec<NodeId>,
    control_inputs: Vec<NodeId>,
    ty: TensorType,
    ty_col: usize,
}

struct LineParser<'a, 'g> {
    toks: Vec<Token<'a>>,
    pos: usize,
    /// Column just past the last character, for "truncated line" errors.
    end_col: usize,
    def: &'g GraphDef,
    lines: &'g [usize],
}

impl<'a> LineParser<'a, '_> {
    fn err(&self, column: usize, msg: impl Into<String>) -> Fail {
        (column, msg.into())
    }

    fn peek(&self) -> Option<Token<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn peek_is(&self, c: char) -> bool {
        self.peek().is_some_and(|t| t.is(c))
    }

    /// The next token; at the end of the line, a "truncated line" error naming `what`.
    fn next(&mut self, what: &str) -> Result<Token<'a>> {
        let t = self
            .peek()
            .ok_or_else(|| self.err(self.end_col, format!("truncated line: expected {what}")))?;
        self.pos += 1;
        Ok(t)
    }

    /// An "expected X, found Y" error at `t`.
    fn unexpected(&self, t: Token<'_>, what: &str) -> Fail {
        self.err(t.col, format!("expected {what}, found `{}`", t.shown()))
    }

    fn punct(&mut self, c: char) -> Result<Token<'a>> {
        let what = format!("`{c}`");
        let t = self.next(&what)?;
        if t.is(c) {
            Ok(t)
        } else {
            Err(self.unexpected(t, &what))
        }
    }

    fn word(&mut self, what: &str) -> Result<Token<'a>> {
        let t = self.next(what)?;
        if t.kind == Kind::Word {
            Ok(t)
        } else {
            Err(self.unexpected(t, what))
        }
    }

    /// After an item of a bracketed list: `,` (true: another item follows) or `close`.
    fn comma_or(&mut self, close: char) -> Result<bool> {
        let what = format!("`,` or `{close}`");
        let t = self.next(&what)?;
        if t.is(',') {
            Ok(true)
        } else if t.is(close) {
            Ok(false)
        } else {
            Err(self.unexpected(t, &what))
        }
    }

    /// `item (, item)* close`, or just `close`; the opening bracket is already consumed.
    fn list<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        if self.peek_is(close) {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if !self.comma_or(close)? {
                return Ok(out);
            }
        }
    }

    /// `(%a, %b)` resolved to ids of earlier nodes.
    fn refs(&mut self) -> Result<Vec<NodeId>> {
        self.punct('(')?;
        self.list(')', |p| {
            let t = p.next("a node reference `%name`")?;
            if t.kind != Kind::Ref {
                return Err(p.unexpected(t, "a node reference `%name`"));
            }
            p.def.find(t.text).ok_or_else(|| {
                p.err(
                    t.col,
                    format!(
                        "unknown node reference `%{}` (nodes must be defined on an earlier line)",
                        t.text
                    ),
                )
            })
        })
    }

    /// A whole node line.
    fn node(&mut self) -> Result<ParsedNode<'a>> {
        let name = self.next("a node definition `%name = op(...) : type`")?;
        if name.kind != Kind::Ref {
            return Err(self.unexpected(name, "a node definition `%name = op(...) : type`"));
        }
        if !is_valid_name(name.text) {
            return Err(self.err(
                name.col,
                format!(
                    "invalid node name `%{}`: use `/`-separated segments of letters, digits, `_`, `.` and `-`",
                    name.text
                ),
            ));
        }
        if let Some(id) = self.def.find(name.text) {
            let first = self.lines.get(id.0).copied().unwrap_or(0);
            return Err(self.err(
                name.col,
                format!(
                    "duplicate node name `%{}` (first defined on line {first})",
                    name.text
                ),
            ));
        }
        self.punct('=')?;
        let op_tok = self.word("an op name")?;
        let inputs = self.refs()?;
        let mut attrs = Vec::new();
        if self.peek_is('{') {
            self.pos += 1;
            attrs = self.list('}', |p| {
                let key = p.word("an attribute name")?;
                p.punct('=')?;
                Ok((key, p.value()?))
            })?;
        }
        let control_inputs = if self.peek_is('^') {
            self.pos += 1;
            self.refs()?
        } else {
            Vec::new()
        };
        self.punct(':')?;
        let ty_col = self.peek().map_or(self.end_col, |t| t.col);
        let ty = self.tensor_type()?;
        if let Some(t) = self.peek() {
            return Err(self.err(
                t.col,
                format!("unexpected `{}` after the node's type", t.shown()),
            ));
        }
        let op = self.op(op_tok, attrs)?;
        Ok(ParsedNode {
            name,
            op_tok,
            op,
            inputs,
            control_inputs,
            ty,
            ty_col,
        })
    }

    /// The op from its name and attributes, via [`op_from_attrs`]. An error is placed at the
    /// attribute it names, else at the op name.
    fn op(&self, op_tok: Token<'_>, attrs: Vec<(Token<'_>, AttrValue)>) -> Result<Op> {
        let mut map = AttrMap::new();
        for (key, v) in &attrs {
            if map.insert(key.text.to_string(), v.clone()).is_some() {
                return Err(self.err(key.col, format!("duplicate attribute `{}`", key.text)));
            }
        }
        build_op(op_tok.text, map).map_err(|msg| {
            let col = attrs
                .iter()
                .find(|(k, _)| msg.contains(&format!("`{}`", k.text)))
                .map_or(op_tok.col, |(k, _)| k.col);
            self.err(col, msg)
        })
    }

    /// A dimension or list entry: a decimal integer of magnitude at most [`MAX_DIM`].
    fn bounded_int(&mut self, what: &str) -> Result<i64> {
        let t = self.word(what)?;
        let x = parse_int(t.text).map_err(|msg| self.err(t.col, msg))?;
        if x.unsigned_abs() > MAX_DIM {
            return Err(self.err(
                t.col,
                format!("`{x}` is too large for a dimension or list entry (at most {MAX_DIM})"),
            ));
        }
        Ok(x)
    }

    /// `dtype[d0,d1,...]`, with an element count that fits in a `usize`.
    fn tensor_type(&mut self) -> Result<TensorType> {
        let t = self.word("a type such as `f32[2,3]`")?;
        let dtype = DType::from_str(t.text).map_err(|msg| self.err(t.col, msg))?;
        self.punct('[')?;
        let shape = self.list(']', |p| {
            let col = p.peek().map_or(p.end_col, |t| t.col);
            let d = p.bounded_int("a dimension")?;
            usize::try_from(d).map_err(|_| p.err(col, format!("bad dimension `{d}`: must be >= 0")))
        })?;
        let ty = TensorType::new(dtype, shape);
        if numel(&ty.shape).is_none() {
            return Err(self.err(t.col, format!("the element count of {ty} overflows")));
        }
        Ok(ty)
    }

    /// An attribute value.
    fn value(&mut self) -> Result<AttrValue> {
        const WHAT: &str = "an attribute value (a bool, number, dtype, list or tensor)";
        let t = self.next(WHAT)?;
        if t.is('[') {
            return self.list_value();
        }
        if t.kind != Kind::Word {
            return Err(self.unexpected(t, WHAT));
        }
        match t.text {
            "true" => return Ok(AttrValue::Bool(true)),
            "false" => return Ok(AttrValue::Bool(false)),
            _ => {}
        }
        if let Ok(dtype) = DType::from_str(t.text) {
            if !self.peek_is('[') {
                return Ok(AttrValue::DType(dtype));
            }
            self.pos -= 1;
            return self.tensor().map(AttrValue::Tensor);
        }
        // Digits only (after a sign) is an integer; a float has a `.`, an exponent, or is
        // `inf`/`NaN`/`nan:0x...`.
        let digits = t.text.trim_start_matches(['+', '-']);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return parse_int(t.text)
                .map(AttrValue::Int)
                .map_err(|msg| self.err(t.col, msg));
        }
        if looks_like_float(t.text) {
            return parse_f64(t.text)
                .map(AttrValue::Float)
                .map_err(|msg| self.err(t.col, msg));
        }
        Err(self.unexpected(t, WHAT))
    }

    /// `[1, 2]`, `[(1, 2), ...]` or `[(0, 1, 3), ...]`; the `[` is already consumed.
    fn list_value(&mut self) -> Result<AttrValue> {
        if !self.peek_is('(') {
            let ints = self.list(']', |p| p.bounded_int("an integer"))?;
            // Shape rules multiply list entries (`reshape`'s element count).
            if ints
                .iter()
                .try_fold(1u64, |acc, &x| acc.checked_mul(x.unsigned_abs()))
                .is_none_or(|n| usize::try_from(n).is_err())
            {
                return Err(self.err(
                    self.toks[self.pos - 1].col,
                    "the product of this list's entries overflows",
                ));
            }
            return Ok(AttrValue::Ints(ints));
        }
        let open = self.toks[self.pos].col;
        let tuples = self.list(']', |p| {
            p.punct('(')?;
            p.list(')', |p| p.bounded_int("an integer"))
        })?;
        let n = tuples[0].len();
        if let Some(bad) = tuples
            .iter()
            .find(|t| t.len() != n || !(2..=3).contains(&t.len()))
        {
            return Err(self.err(
                open,
                format!(
                    "a list of tuples must hold all pairs or all triples, found a tuple of {}",
                    bad.len()
                ),
            ));
        }
        Ok(if n == 2 {
            AttrValue::Pairs(tuples.iter().map(|t| (t[0], t[1])).collect())
        } else {
            AttrValue::Triples(tuples.iter().map(|t| (t[0], t[1], t[2])).collect())
        })
    }

    /// A tensor literal `f32[2] [1.0, 2.0]`.
    fn tensor(&mut self) -> Result<Value> {
        let ty = self.tensor_type()?;
        let shape = &ty.shape;
        match ty.dtype {
            DType::F32 => self.elements(shape, "an f32", parse_f32),
            DType::F64 => self.elements(shape, "an f64", parse_f64),
            DType::I32 => self.elements(shape, "an i32", int_element::<i32>),
            DType::I64 => self.elements(shape, "an i64", int_element::<i64>),
            DType::U8 => self.elements(shape, "a u8", int_element::<u8>),
            DType::Bool => self.elements(shape, "a bool", |s| match s {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("bad bool `{s}`: expected `true` or `false`")),
            }),
        }
    }

    /// `[e0, e1, ...]`: exactly as many elements as `shape` holds.
    fn elements<T: Element>(
        &mut self,
        shape: &[usize],
        what: &str,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<Value> {
        let open = self.punct('[')?;
        let data = self.list(']', |p| {
            let t = p.word(&format!("{what} element"))?;
            parse(t.text).map_err(|msg| p.err(t.col, msg))
        })?;
        let n = numel(shape).unwrap_or(usize::MAX);
        if data.len() != n {
            return Err(self.err(
                open.col,
                format!(
                    "a tensor of shape {shape:?} needs {n} elements, found {}",
                    data.len()
                ),
            ));
        }
        Value::from_vec(shape, data).map_err(|e| self.err(open.col, e.to_string()))
    }
}

/// Add a parsed node to `def` and check its declared type.
fn add_node(def: &mut GraphDef, n: ParsedNode<'_>) -> Result<()> {
    let id = def
        .add(
            n.op,
            &n.inputs,
            &n.control_inputs,
            n.name.text.to_string(),
            None,
        )
        .map_err(|e| (n.op_tok.col, e.to_string()))?;
    let inferred = &def.node(id).ty;
    if *inferred != n.ty {
        return Err((
            n.ty_col,
            format!(
                "type mismatch for node `%{}`: declared {} but its op infers {inferred}",
                n.name.text, n.ty
            ),
        ));
    }
    Ok(())
}

/// [`op_from_attrs`], except that an empty list `[]` (read as an empty integer list) is
/// retried as an empty list of pairs or triples when the op expects one of those.
fn build_op(name: &str, map: AttrMap) -> std::result::Result<Op, String> {
    let first = op_from_attrs(name, map.clone());
    if first.is_ok() {
        return first;
    }
    let empty = AttrValue::Ints(Vec::new());
    for key in map.iter().filter(|(_, v)| **v == empty).map(|(k, _)| k) {
        for alt in [AttrValue::Pairs(Vec::new()), AttrValue::Triples(Vec::new())] {
            let mut m = map.clone();
            m.insert(key.clone(), alt);
            if let Ok(op) = op_from_attrs(name, m) {
                return Ok(op);
            }
        }
    }
    first
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn parse_int(s: &str) -> std::result::Result<i64, String> {
    s.parse::<i64>()
        .map_err(|e| format!("bad number `{s}`: {e}"))
}

fn int_element<T: FromStr>(s: &str) -> std::result::Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| format!("bad {} element `{s}`: {e}", std::any::type_name::<T>()))
}

/// Whether a word that is not an integer is meant as a float.
fn looks_like_float(s: &str) -> bool {
    let body = s.trim_start_matches(['+', '-']);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || body.eq_ignore_ascii_case("inf")
        || body.eq_ignore_ascii_case("infinity")
        || body.len() >= 3 && body[..3].eq_ignore_ascii_case("nan")
}

/// The bits after `nan:0x`, if `s` has that form.
fn nan_bits(s: &str) -> Option<&str> {
    let (head, bits) = s.split_once(':')?;
    head.eq_ignore_ascii_case("nan").then_some(())?;
    bits.strip_prefix("0x").or_else(|| bits.strip_prefix("0X"))
}

macro_rules! parse_float {
    ($name:ident, $t:ty, $bits:ty) => {
        /// A float as printed (`{:?}` syntax, `inf`, `NaN`, or `nan:0x<bits>`), bit-exactly.
        fn $name(s: &str) -> std::result::Result<$t, String> {
            let what = stringify!($t);
            if let Some(hex) = nan_bits(s) {
                let x = <$bits>::from_str_radix(hex, 16)
                    .map(<$t>::from_bits)
                    .map_err(|e| format!("bad {what} NaN bits `{s}`: {e}"))?;
                return if x.is_nan() {
                    Ok(x)
                } else {
                    Err(format!("`{s}` is not the bit pattern of an {what} NaN"))
                };
            }
            s.parse::<$t>()
                .map_err(|e| format!("bad {what} number `{s}`: {e}"))
        }
    };
}
parse_float!(parse_f32, f32, u32);
parse_float!(parse_f64, f64, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_syntax_is_bit_exact() {
        assert_eq!(parse_f64("NaN").unwrap().to_bits(), f64::NAN.to_bits());
        assert_eq!(parse_f32("NaN").unwrap().to_bits(), f32::NAN.to_bits());
        assert_eq!(parse_f64("-0.0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(parse_f32("nan:0x7fc00001").unwrap().to_bits(), 0x7fc0_0001);
        assert_eq!(
            parse_f64("nan:0xfff8000000000000").unwrap().to_bits(),
            (-f64::NAN).to_bits()
        );
        assert!(
            parse_f32("nan:0x3f800000")
                .unwrap_err()
                .contains("not the bit pattern")
        );
        assert!(parse_f32("nan:0x1ffffffff").is_err());
        assert!(parse_f32("nan:").is_err());
        // Shortest round-trip output reads back exactly as the same type.
        for x in [0.1f32, 1e-45, f32::MAX, 16777217.0, -3.4028235e38] {
            assert_eq!(parse_f32(&format!("{x:?}")).unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn float_or_int() {
        assert!(looks_like_float("1e5") && looks_like_float("-inf") && looks_like_float("NaN"));
        assert!(looks_like_float("nan:0x1") && looks_like_float(".5"));
        assert!(!looks_like_float("abc") && !looks_like_float("e5"));
    }
}
