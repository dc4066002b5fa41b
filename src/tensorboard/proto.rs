//! A small Protocol Buffers wire-format encoder and decoder — just what TensorBoard's
//! messages need (varints, 32/64-bit fixed, length-delimited fields), so the event writer
//! needs no code generator.
//!
//! Fields are written in the order the caller adds them, and always written — even when they
//! hold their type's default — which the format allows and which oneof members (such as
//! `Summary.Value.simple_value = 0.0`) require.

use crate::{GraphError, Result};

/// Wire types (protobuf encoding spec).
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// An encoded message under construction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    buf: Vec<u8>,
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Message {
    /// An empty message.
    pub fn new() -> Message {
        Message::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        put_varint(&mut self.buf, ((field as u64) << 3) | wire as u64);
    }

    /// A `uint64`/`enum`/`bool` field (varint).
    pub fn varint(&mut self, field: u32, v: u64) -> &mut Self {
        self.key(field, VARINT);
        put_varint(&mut self.buf, v);
        self
    }

    /// An `int64` field (varint of the two's complement; negatives take 10 bytes).
    pub fn int64(&mut self, field: u32, v: i64) -> &mut Self {
        self.varint(field, v as u64)
    }

    /// An `int32` field (negatives are sign-extended to 64 bits, as the spec requires).
    pub fn int32(&mut self, field: u32, v: i32) -> &mut Self {
        self.varint(field, v as i64 as u64)
    }

    /// A `bool` field.
    pub fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.varint(field, v as u64)
    }

    /// A `double` field (fixed 64-bit, little-endian).
    pub fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `float` field (fixed 32-bit, little-endian).
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        put_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A `string` field.
    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// A packed repeated varint field (`repeated int64`/`enum`, proto3's default
    /// encoding): one length-delimited field holding the varints.
    pub fn packed_varints(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) -> &mut Self {
        let mut body = Vec::new();
        for v in vs {
            put_varint(&mut body, v);
        }
        self.bytes(field, &body)
    }

    /// An embedded message field.
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.buf)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One decoded field value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (raw bits; `f64::from_bits` for a double).
    Fixed64(u64),
    /// Wire type 2: bytes, string, embedded message or packed repeated field.
    Len(&'a [u8]),
    /// Wire type 5 (raw bits; `f32::from_bits` for a float).
    Fixed32(u32),
}

fn bad(msg: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("protobuf decode: {msg}"))
}

fn get_varint(buf: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*at)
            .ok_or_else(|| bad(format!("truncated varint at byte {at}")))?;
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad(format!("varint longer than 10 bytes before byte {at}")))
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| bad(format!("field of {n} bytes at byte {at} runs past the end")))?;
    let s = &buf[*at..end];
    *at = end;
    Ok(s)
}

/// The fields of an encoded message, in order, as `(field number, value)`.
pub fn parse(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = get_varint(buf, &mut at)?;
        let field = u32::try_from(key >> 3).map_err(|_| bad("field number out of range"))?;
        let value = match (key & 7) as u8 {
            VARINT => Wire::Varint(get_varint(buf, &mut at)?),
            FIXED64 => Wire::Fixed64(u64::from_le_bytes(
                take(buf, &mut at, 8)?.try_into().expect("8 bytes"),
            )),
            LEN => {
                let n = get_varint(buf, &mut at)?;
                let n = usize::try_from(n).map_err(|_| bad("length out of range"))?;
                Wire::Len(take(buf, &mut at, n)?)
            }
            FIXED32 => Wire::Fixed32(u32::from_le_bytes(
                take(buf, &mut at, 4)?.try_into().expect("4 bytes"),
            )),
            w => return Err(bad(format!("unsupported wire type {w} for field {field}"))),
        };
        fields.push((field, value));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodings from the protobuf encoding guide (`150` → `08 96 01`, `"testing"` →
    /// `12 07 74 65 73 74 69 6e 67`, an embedded message `1a 03 08 96 01`) and for negative
    /// ints (ten bytes).
    #[test]
    fn known_encodings() {
        let mut m = Message::new();
        m.varint(1, 150);
        assert_eq!(m.as_bytes(), [0x08, 0x96, 0x01]);
        let mut s = Message::new();
        s.string(2, "testing");
        assert_eq!(
            s.as_bytes(),
            [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
        let mut outer = Message::new();
        outer.message(3, &m);
        assert_eq!(outer.as_bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
        // The guide's packed example: `repeated int32 f = 6 [3, 270, 86942]`.
        let mut p = Message::new();
        p.packed_varints(6, [3, 270, 86942]);
        assert_eq!(
            p.as_bytes(),
            [0x32, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]
        );
        let mut n = Message::new();
        n.int32(1, -1);
        assert_eq!(
            n.as_bytes(),
            [
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        let mut f = Message::new();
        f.float(2, 1.0).double(1, 0.5);
        assert_eq!(
            f.as_bytes(),
            [0x15, 0, 0, 0x80, 0x3f, 0x09, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f]
        );
    }

    #[test]
    fn round_trip_and_malformed_input() {
        let mut inner = Message::new();
        inner.int64(1, -5).bool(2, true);
        let mut m = Message::new();
        m.double(1, 1.25)
            .int64(2, 1 << 40)
            .message(5, &inner)
            .float(7, -2.5)
            .string(3, "");
        let fields = parse(m.as_bytes()).unwrap();
        assert_eq!(
            fields,
            vec![
                (1, Wire::Fixed64(1.25f64.to_bits())),
                (2, Wire::Varint(1 << 40)),
                (5, Wire::Len(inner.as_bytes())),
                (7, Wire::Fixed32((-2.5f32).to_bits())),
                (3, Wire::Len(b"")),
            ]
        );
        assert_eq!(
            parse(inner.as_bytes()).unwrap(),
            vec![(1, Wire::Varint(-5i64 as u64)), (2, Wire::Varint(1))]
        );
        let bytes = m.as_bytes();
        let err = parse(&bytes[..bytes.len() - 8]).unwrap_err().to_string();
        assert!(err.contains("runs past the end"), "{err}");
        let err = parse(&[0x08, 0x80]).unwrap_err().to_string();
        assert!(err.contains("truncated varint"), "{err}");
        let err = parse(&[0x0b]).unwrap_err().to_string();
        assert!(err.contains("wire type 3"), "{err}");
    }
}
