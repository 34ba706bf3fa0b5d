//! Digests as text: record ids, object keys, schema versions and masked
//! values are all lower-case hex of a SHA-256 (or HMAC) prefix.

/// Lower-case hex of `bytes`.
///
/// Through `hex::encode_to_slice`, a table lookup, rather than `hex::encode`,
/// which collects an iterator of chars and cost more than the SHA-256 itself
/// for the record id every change carries.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // It fails only when the output is not twice the input, and it is.
    if hex::encode_to_slice(bytes, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_what_the_hex_crate_writes() {
        let all: Vec<u8> = (0..=255).collect();
        for len in [0, 1, 16, 31, 32, 33, 64, 255, 256] {
            assert_eq!(super::hex(&all[..len]), hex::encode(&all[..len]));
        }
    }
}
