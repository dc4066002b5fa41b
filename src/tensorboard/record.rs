//! TFRecord framing (`tensorflow/core/lib/io/record_writer.cc`): each record is
//!
//! ```text
//! u64 length (little-endian)
//! u32 masked_crc32c(length bytes)
//! u8  data[length]
//! u32 masked_crc32c(data)
//! ```
//!
//! [`write_record`] frames one record; [`read_records`] splits a byte buffer back into
//! records, checking both CRCs, so tests (and users) can verify files without TensorFlow.

use super::crc32c::masked_crc32c;
use crate::{GraphError, Result};
use std::io::Write;

/// Bytes of framing around each record (8 length + 4 + 4 CRCs).
pub const OVERHEAD: usize = 16;

/// Write `data` as one TFRecord.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// `data` framed as one TFRecord, in memory.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + OVERHEAD);
    write_record(&mut out, data).expect("writing to a Vec cannot fail");
    out
}

fn corrupt(offset: usize, msg: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("TFRecord: record at byte {offset}: {msg}"))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Split `bytes` (a whole TFRecord file) into its records' data, checking the length and
/// data CRCs of each. A truncated record or a CRC mismatch is an error naming the byte
/// offset of the record.
pub fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < 12 {
            return Err(corrupt(
                at,
                format!("truncated header ({} bytes left)", bytes.len() - at),
            ));
        }
        let len_bytes = &bytes[at..at + 8];
        let (want, got) = (u32_at(bytes, at + 8), masked_crc32c(len_bytes));
        if want != got {
            return Err(corrupt(
                at,
                format!("length CRC mismatch: stored {want:#010x}, computed {got:#010x}"),
            ));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let left = (bytes.len() - at - 12) as u64;
        if len.saturating_add(4) > left {
            return Err(corrupt(
                at,
                format!("truncated: length {len} but only {left} bytes follow the header"),
            ));
        }
        let data = &bytes[at + 12..at + 12 + len as usize];
        let end = at + 12 + len as usize;
        let (want, got) = (u32_at(bytes, end), masked_crc32c(data));
        if want != got {
            return Err(corrupt(
                at,
                format!("data CRC mismatch: stored {want:#010x}, computed {got:#010x}"),
            ));
        }
        records.push(data);
        at = end + 4;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes TensorFlow 2.21's `tf.io.TFRecordWriter` wrote for the records `b"hello"`,
    /// `b""` and `b"123456789"`.
    const TF_FILE: &str = "0500000000000000eab2043e68656c6c6fbb1f1c19\
                           000000000000000029039807d8ea82a2\
                           090000000000000037f97139313233343536373839e5b08ac7";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn framing_is_byte_identical_to_tensorflow() {
        let mut out = Vec::new();
        for r in [&b"hello"[..], b"", b"123456789"] {
            write_record(&mut out, r).unwrap();
        }
        assert_eq!(out, hex(TF_FILE));
        assert_eq!(frame(b"hello"), hex(&TF_FILE[..2 * 21]));
    }

    #[test]
    fn reads_back_and_detects_corruption() {
        let file = hex(TF_FILE);
        let records = read_records(&file).unwrap();
        assert_eq!(records, vec![&b"hello"[..], b"", b"123456789"]);
        assert!(read_records(&[]).unwrap().is_empty());

        // Flip one data bit of the first record.
        let mut bad = file.clone();
        bad[13] ^= 1;
        let err = read_records(&bad).unwrap_err().to_string();
        assert!(
            err.contains("record at byte 0") && err.contains("data CRC"),
            "{err}"
        );

        // Damage the length of the second record.
        let mut bad = file.clone();
        bad[21] = 7;
        let err = read_records(&bad).unwrap_err().to_string();
        assert!(
            err.contains("record at byte 21") && err.contains("length CRC"),
            "{err}"
        );

        // Cut the file inside the last record.
        let err = read_records(&file[..file.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record at byte 37") && err.contains("truncated"),
            "{err}"
        );
        let err = read_records(&file[..30]).unwrap_err().to_string();
        assert!(err.contains("truncated header"), "{err}");
    }
}
