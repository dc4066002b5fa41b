//! TensorBoard's `Event` and `Summary` messages, hand-encoded against TensorFlow's schema.
//!
//! Field numbers (checked against the descriptors TensorBoard 2.21 ships in
//! `tensorboard/compat/proto/*_pb2.py`, which are generated from the same files):
//!
//! - `tensorflow/core/util/event.proto`, `message Event`: `double wall_time = 1`,
//!   `int64 step = 2`, and the oneof `what`: `string file_version = 3`,
//!   `bytes graph_def = 4` (a serialized `GraphDef`), `Summary summary = 5`.
//! - `tensorflow/core/framework/summary.proto`, `message Summary`:
//!   `repeated Value value = 1`; `message Summary.Value`: `string tag = 1`,
//!   `string node_name = 7`, `SummaryMetadata metadata = 9`, and the oneof `value`:
//!   `float simple_value = 2` (a scalar, shown in the Scalars tab).
//!
//! [`Event::decode`] reads the same subset back (other `what` members become
//! [`What::Other`]; summary values other than `simple_value` are skipped).

use super::proto::{Message, Wire, parse};
use crate::{GraphError, Result};

/// `Event` field numbers (`event.proto`).
mod field {
    pub const WALL_TIME: u32 = 1;
    pub const STEP: u32 = 2;
    pub const FILE_VERSION: u32 = 3;
    pub const GRAPH_DEF: u32 = 4;
    pub const SUMMARY: u32 = 5;
    /// `Summary.value` (`summary.proto`).
    pub const SUMMARY_VALUE: u32 = 1;
    /// `Summary.Value.tag`.
    pub const VALUE_TAG: u32 = 1;
    /// `Summary.Value.simple_value`.
    pub const VALUE_SIMPLE: u32 = 2;
}

/// The `file_version` every event file starts with (what TensorFlow writes).
pub const FILE_VERSION: &str = "brain.Event:2";

/// One scalar of a summary (`Summary.Value` with `simple_value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The series name (`loss`, `train/accuracy`, …; `/` groups charts in TensorBoard).
    pub tag: String,
    /// The value.
    pub value: f32,
}

/// What an event carries (the oneof `Event.what`).
#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// `file_version` (the first event of a file).
    FileVersion(String),
    /// `graph_def`: a serialized `tensorflow.GraphDef`.
    GraphDef(Vec<u8>),
    /// `summary` with scalar values.
    Summary(Vec<Scalar>),
    /// Another member of the oneof, by field number (decoding only).
    Other(u32),
}

/// One event record.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The global step (training step) the event belongs to.
    pub step: i64,
    /// The payload.
    pub what: What,
}

impl Event {
    /// The encoded `tensorflow.Event`.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Message::new();
        m.double(field::WALL_TIME, self.wall_time)
            .int64(field::STEP, self.step);
        match &self.what {
            What::FileVersion(v) => {
                m.string(field::FILE_VERSION, v);
            }
            What::GraphDef(g) => {
                m.bytes(field::GRAPH_DEF, g);
            }
            What::Summary(values) => {
                let mut summary = Message::new();
                for s in values {
                    let mut v = Message::new();
                    v.string(field::VALUE_TAG, &s.tag)
                        .float(field::VALUE_SIMPLE, s.value);
                    summary.message(field::SUMMARY_VALUE, &v);
                }
                m.message(field::SUMMARY, &summary);
            }
            What::Other(f) => {
                // Only produced by decoding; re-encode as an empty member so the field
                // number survives a round trip.
                m.bytes(*f, &[]);
            }
        }
        m.into_bytes()
    }

    /// Decode an encoded `tensorflow.Event` (the subset this module writes).
    pub fn decode(bytes: &[u8]) -> Result<Event> {
        let mut event = Event {
            wall_time: 0.0,
            step: 0,
            what: What::Other(0),
        };
        for (f, v) in parse(bytes)? {
            match (f, v) {
                (field::WALL_TIME, Wire::Fixed64(b)) => event.wall_time = f64::from_bits(b),
                (field::STEP, Wire::Varint(s)) => event.step = s as i64,
                (field::FILE_VERSION, Wire::Len(s)) => {
                    event.what = What::FileVersion(utf8(s, "Event.file_version")?)
                }
                (field::GRAPH_DEF, Wire::Len(g)) => event.what = What::GraphDef(g.to_vec()),
                (field::SUMMARY, Wire::Len(s)) => event.what = What::Summary(decode_summary(s)?),
                (3..=9, _) => event.what = What::Other(f),
                (field::WALL_TIME | field::STEP, v) => {
                    return Err(GraphError::invalid(format!(
                        "Event: field {f} has the wrong wire type ({v:?})"
                    )));
                }
                _ => {}
            }
        }
        Ok(event)
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| GraphError::invalid(format!("{what}: not UTF-8 ({e})")))
}

fn decode_summary(bytes: &[u8]) -> Result<Vec<Scalar>> {
    let mut out = Vec::new();
    for (f, v) in parse(bytes)? {
        let (field::SUMMARY_VALUE, Wire::Len(value)) = (f, v) else {
            continue;
        };
        let mut tag = String::new();
        let mut simple = None;
        for (f, v) in parse(value)? {
            match (f, v) {
                (field::VALUE_TAG, Wire::Len(t)) => tag = utf8(t, "Summary.Value.tag")?,
                (field::VALUE_SIMPLE, Wire::Fixed32(b)) => simple = Some(f32::from_bits(b)),
                _ => {}
            }
        }
        if let Some(value) = simple {
            out.push(Scalar { tag, value });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.compat.v1.Event(wall_time=1.5, step=7, summary=Summary(value=[Value(tag="loss",
    /// simple_value=0.25)])).SerializeToString()` as TensorFlow 2.21 encodes it.
    const TF_SCALAR_EVENT: &str = "09000000000000f83f10072a0d0a0b0a046c6f737315000080\
                                   3e";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn scalar_event_matches_tensorflow_bytes() {
        let e = Event {
            wall_time: 1.5,
            step: 7,
            what: What::Summary(vec![Scalar {
                tag: "loss".into(),
                value: 0.25,
            }]),
        };
        assert_eq!(hex(&e.encode()), TF_SCALAR_EVENT);
        assert_eq!(Event::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn round_trips() {
        for what in [
            What::FileVersion(FILE_VERSION.into()),
            What::GraphDef(vec![1, 2, 3]),
            What::Summary(vec![]),
            What::Summary(vec![
                Scalar {
                    tag: "a/b".into(),
                    value: 0.0,
                },
                Scalar {
                    tag: "c".into(),
                    value: -1e-30,
                },
            ]),
        ] {
            let e = Event {
                wall_time: 1.7e9,
                step: -3,
                what,
            };
            assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        }
        assert!(Event::decode(&[0x09, 1, 2]).is_err());
    }
}
