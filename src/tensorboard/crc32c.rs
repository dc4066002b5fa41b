//! CRC-32C (Castagnoli), the checksum of TFRecord framing, and TensorFlow's *masked* form.
//!
//! The polynomial is 0x1EDC6F41 (reflected 0x82F63B78), initial value and final XOR
//! `0xFFFFFFFF` — the CRC of iSCSI (RFC 3720 §B.4) and of `tensorflow/core/lib/hash/crc32c.h`.
//! TFRecord stores `mask(crc)` (`tensorflow/core/lib/hash/crc32c.h`, `crc32c::Mask`): the CRC
//! rotated right by 15 bits plus the constant `0xa282ead8`, so that a CRC computed over data
//! that itself embeds CRCs does not degenerate.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;
/// The constant TensorFlow adds to a rotated CRC (`kMaskDelta`).
const MASK_DELTA: u32 = 0xa282_ead8;

/// The byte-at-a-time lookup table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TensorFlow's masked CRC (`crc32c::Mask`): `rotate_right(crc, 15) + 0xa282ead8`.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The inverse of [`mask`] (`crc32c::Unmask`).
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// `mask(crc32c(data))`, what TFRecord stores.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check value and the iSCSI test vectors of RFC 3720 §B.4.
    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    /// Masked CRCs from a file written by TensorFlow 2.21's `tf.io.TFRecordWriter`
    /// (records `b"hello"`, `b""`, `b"123456789"`): the masked CRC of each record's
    /// little-endian u64 length and of its data.
    #[test]
    fn masking_matches_tensorflow() {
        assert_eq!(masked_crc32c(&5u64.to_le_bytes()), 0x3e04_b2ea);
        assert_eq!(masked_crc32c(b"hello"), 0x191c_1fbb);
        assert_eq!(masked_crc32c(&0u64.to_le_bytes()), 0x0798_0329);
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        assert_eq!(masked_crc32c(&9u64.to_le_bytes()), 0x3971_f937);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        for crc in [0u32, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000] {
            assert_eq!(unmask(mask(crc)), crc);
        }
    }
}
