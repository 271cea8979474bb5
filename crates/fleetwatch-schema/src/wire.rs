//! Confluent's wire format: magic byte 0, the schema id as 4 big-endian bytes, then the
//! Avro binary datum or the JSON document.

use crate::error::{RegistryError, RegistryResult};

/// The magic byte.
pub const MAGIC: u8 = 0;

/// Frames `payload` with `id`.
pub fn frame(id: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a framed message into (schema id, payload); names what is wrong otherwise.
pub fn unframe(bytes: &[u8]) -> RegistryResult<(i32, &[u8])> {
    if bytes.len() < 5 {
        return Err(RegistryError::Wire(format!(
            "message of {} bytes is too short for the schema registry wire format (magic byte + 4-byte schema id)",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC {
        return Err(RegistryError::Wire(format!(
            "unknown magic byte {:#04x} (expected 0x00): not in the schema registry wire format",
            bytes[0]
        )));
    }
    let id = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frame_round_trips(id in any::<i32>(), payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let f = frame(id, &payload);
            let (i, p) = unframe(&f).unwrap();
            prop_assert_eq!(i, id);
            prop_assert_eq!(p, &payload[..]);
        }
    }

    #[test]
    fn bad_frames_are_named() {
        assert!(
            unframe(&[0, 1])
                .unwrap_err()
                .to_string()
                .contains("too short")
        );
        assert!(
            unframe(&[1, 0, 0, 0, 1, 9])
                .unwrap_err()
                .to_string()
                .contains("magic byte 0x01")
        );
    }
}
