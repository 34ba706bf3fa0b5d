//! Parquet's value encodings, written by hand for the raw zone's pages.
//!
//! Landing writes flat columns, each file once, in one row group. Going
//! through Arrow arrays and parquet-rs's generic column writer copied every
//! value twice more and spent as much time in levels, mini-batches and
//! per-value bookkeeping as zstd spent compressing. So [`crate::encode`]
//! gathers each column's values in one buffer and encodes pages from it
//! with the functions here; parquet-rs still frames them (page headers,
//! footer, schema), so the thrift side is the library's.
//!
//! Each function is one encoding of the Parquet format as parquet-format's
//! `Encodings.md` defines it. All are pure. The tests here decode their
//! bytes by the format's rules; `encode`'s tests read whole files back with
//! parquet-rs.

/// Appends `v` as ULEB128 (the format's "varint").
pub fn uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bits needed for `v` (0 for 0).
pub fn bit_width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Packs each value's low `width` bits, least significant bit first; the
/// last byte is padded with zeros. Values must fit in `width` bits.
fn bit_pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in values {
        acc |= u128::from(v) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    let rest = bits.div_ceil(8) as usize;
    out.extend_from_slice(&(acc as u64).to_le_bytes()[..rest]);
}

/// The RLE / bit-packing hybrid (definition levels, dictionary indices),
/// without a length prefix. Runs of eight or more equal values become RLE
/// runs; the rest go into bit-packed groups of eight, filled up from the
/// next run where a group would otherwise end early (a bit-packed run can
/// be padded only at the very end).
pub fn rle_hybrid(values: &[u32], width: u32, out: &mut Vec<u8>) {
    let byte_width = width.div_ceil(8) as usize;
    let mut literal: Vec<u64> = Vec::new();
    let flush = |literal: &mut Vec<u64>, out: &mut Vec<u8>| {
        if literal.is_empty() {
            return;
        }
        let groups = literal.len().div_ceil(8);
        literal.resize(groups * 8, 0);
        uleb(out, ((groups as u64) << 1) | 1);
        bit_pack(literal, width, out);
        literal.clear();
    };
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let mut end = i + 1;
        while end < values.len() && values[end] == v {
            end += 1;
        }
        let mut run = end - i;
        if run >= 8 && !literal.len().is_multiple_of(8) {
            let fill = (8 - literal.len() % 8).min(run);
            literal.extend(std::iter::repeat_n(u64::from(v), fill));
            run -= fill;
        }
        if run >= 8 {
            flush(&mut literal, out);
            uleb(out, (run as u64) << 1);
            out.extend_from_slice(&v.to_le_bytes()[..byte_width]);
        } else {
            literal.extend(std::iter::repeat_n(u64::from(v), run));
        }
        i = end;
    }
    flush(&mut literal, out);
}

/// Values per DELTA_BINARY_PACKED block, and miniblocks per block (the
/// sizes parquet-rs and parquet-mr write).
const BLOCK: usize = 128;
const MINIBLOCKS: usize = 4;
const MINIBLOCK: usize = BLOCK / MINIBLOCKS;

/// DELTA_BINARY_PACKED: differences between neighbours, less the block's
/// smallest, bit-packed per miniblock at the width its largest needs.
/// Sorted or slowly changing integers (ids, times, lengths) pack into a few
/// bits each. Arithmetic wraps, as the format's readers expect.
pub fn delta_binary_packed(values: &[i64], out: &mut Vec<u8>) {
    uleb(out, BLOCK as u64);
    uleb(out, MINIBLOCKS as u64);
    uleb(out, values.len() as u64);
    let Some((&first, rest)) = values.split_first() else {
        uleb(out, 0);
        return;
    };
    uleb(out, zigzag(first));
    let mut prev = first;
    for block in rest.chunks(BLOCK) {
        let mut deltas = [0i64; BLOCK];
        for (d, &v) in deltas.iter_mut().zip(block) {
            *d = v.wrapping_sub(prev);
            prev = v;
        }
        let min = deltas[..block.len()].iter().copied().min().unwrap_or(0);
        uleb(out, zigzag(min));
        // Unused places stay 0: a short last miniblock is padded with them.
        let mut packed = [0u64; BLOCK];
        for (p, d) in packed.iter_mut().zip(&deltas[..block.len()]) {
            *p = d.wrapping_sub(min) as u64;
        }
        let widths_at = out.len();
        out.extend_from_slice(&[0; MINIBLOCKS]);
        // Miniblocks past the last value keep width 0 and have no bytes.
        for (m, mini) in packed.chunks(MINIBLOCK).enumerate() {
            if m * MINIBLOCK >= block.len() {
                break;
            }
            let width = bit_width(mini.iter().fold(0, |a, &b| a | b));
            out[widths_at + m] = width as u8;
            bit_pack(mini, width, out);
        }
    }
}

/// DELTA_LENGTH_BYTE_ARRAY: the lengths, delta-packed, then the bytes of
/// every value in one run (`data` already holds them so).
pub fn delta_length_byte_array(lengths: &[i64], data: &[u8], out: &mut Vec<u8>) {
    delta_binary_packed(lengths, out);
    out.extend_from_slice(data);
}

/// DELTA_BYTE_ARRAY: for each value the length of the prefix it shares
/// with the one before, then the rest as DELTA_LENGTH_BYTE_ARRAY. Sorted
/// positions share most of their digits.
pub fn delta_byte_array<'a>(values: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let (mut prefixes, mut suffix_lengths, mut suffixes) = (Vec::new(), Vec::new(), Vec::new());
    let mut prev: &[u8] = &[];
    for v in values {
        let shared = prev.iter().zip(v).take_while(|(a, b)| a == b).count();
        prefixes.push(shared as i64);
        suffix_lengths.push((v.len() - shared) as i64);
        suffixes.extend_from_slice(&v[shared..]);
        prev = v;
    }
    delta_binary_packed(&prefixes, out);
    delta_length_byte_array(&suffix_lengths, &suffixes, out);
}

/// PLAIN byte arrays: each value behind its 4-byte little-endian length.
pub fn plain_byte_array<'a>(values: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

/// PLAIN booleans: one bit each, least significant first.
pub fn plain_booleans(values: &[bool], out: &mut Vec<u8>) {
    for chunk in values.chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |b, (i, &v)| b | (u8::from(v) << i));
        out.push(byte);
    }
}

#[cfg(test)]
mod tests {
    //! The encoders are read back by parquet-rs through whole files in
    //! `encode`'s tests; here, their bytes against the format's rules.
    use super::*;
    use proptest::prelude::*;

    /// Decodes the hybrid by the format's rules, independently of the encoder.
    fn read_hybrid(bytes: &[u8], width: u32, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = 0;
        while out.len() < n {
            let header = read_uleb(bytes, &mut at);
            if header & 1 == 1 {
                let count = (header >> 1) as usize * 8;
                for i in 0..count {
                    let mut v = 0u32;
                    for bit in 0..width as usize {
                        let pos = i * width as usize + bit;
                        v |= u32::from(bytes[at + pos / 8] >> (pos % 8) & 1) << bit;
                    }
                    out.push(v);
                }
                at += count * width as usize / 8;
            } else {
                let count = (header >> 1) as usize;
                let w = width.div_ceil(8) as usize;
                let mut v = [0u8; 4];
                v[..w].copy_from_slice(&bytes[at..at + w]);
                at += w;
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), count));
            }
        }
        assert_eq!(at, bytes.len(), "bytes left after the values");
        out.truncate(n);
        out
    }

    fn read_uleb(bytes: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = bytes[*at];
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return v;
            }
        }
    }

    /// Decodes DELTA_BINARY_PACKED by the format's rules.
    fn read_delta(bytes: &[u8]) -> Vec<i64> {
        let mut at = 0;
        let block = read_uleb(bytes, &mut at) as usize;
        let minis = read_uleb(bytes, &mut at) as usize;
        let n = read_uleb(bytes, &mut at) as usize;
        let unzig = |v: u64| (v >> 1) as i64 ^ -((v & 1) as i64);
        let mut out = vec![unzig(read_uleb(bytes, &mut at))];
        while out.len() < n {
            let min = unzig(read_uleb(bytes, &mut at));
            let widths = bytes[at..at + minis].to_vec();
            at += minis;
            for w in widths {
                if out.len() >= n {
                    break;
                }
                let w = w as usize;
                for i in 0..block / minis {
                    let mut v = 0u64;
                    for bit in 0..w {
                        let pos = i * w + bit;
                        v |= u64::from(bytes[at + pos / 8] >> (pos % 8) & 1) << bit;
                    }
                    if out.len() < n {
                        let prev = *out.last().unwrap_or(&0);
                        out.push(prev.wrapping_add(min).wrapping_add(v as i64));
                    }
                }
                at += block / minis * w / 8;
            }
        }
        assert_eq!(at, bytes.len(), "bytes left after the values");
        out.truncate(n);
        out
    }

    #[test]
    fn uleb_matches_the_format() {
        let mut out = Vec::new();
        uleb(&mut out, 1);
        uleb(&mut out, 127);
        uleb(&mut out, 128);
        uleb(&mut out, 300);
        assert_eq!(out, [1, 127, 0x80, 1, 0xac, 2]);
    }

    #[test]
    fn delta_packed_edge_cases() {
        for values in [
            vec![7],
            vec![i64::MIN, i64::MAX, 0, -1, i64::MAX, i64::MIN],
            (0..129).collect(),
            (0..1000).map(|i| i * i - 5_000).collect(),
            vec![5; 300],
        ] {
            let mut out = Vec::new();
            delta_binary_packed(&values, &mut out);
            assert_eq!(read_delta(&out), values);
        }
        let mut empty = Vec::new();
        delta_binary_packed(&[], &mut empty);
        assert_eq!(empty, [128, 1, 4, 0, 0]);
    }

    #[test]
    fn hybrid_runs_and_groups() {
        // A literal that ends mid-group before a long run, a run, a tail.
        let values: Vec<u32> = [1, 0, 1]
            .into_iter()
            .chain(std::iter::repeat_n(1, 20))
            .chain([0, 0, 1])
            .collect();
        let mut out = Vec::new();
        rle_hybrid(&values, 1, &mut out);
        assert_eq!(read_hybrid(&out, 1, values.len()), values);
        // 3 literals + 5 from the run make one group; 15 stay a run.
        assert_eq!(out[0], 0b11, "one bit-packed group first: {out:?}");
        assert_eq!(out[2], 15 << 1, "then a run of 15: {out:?}");
    }

    #[test]
    fn booleans_pack_least_significant_bit_first() {
        let mut out = Vec::new();
        plain_booleans(
            &[true, false, true, true, false, false, false, false, true],
            &mut out,
        );
        assert_eq!(out, [0b1101, 1]);
    }

    proptest! {
        #[test]
        fn any_integers_read_back(values in prop::collection::vec(any::<i64>(), 1..400)) {
            let mut out = Vec::new();
            delta_binary_packed(&values, &mut out);
            prop_assert_eq!(read_delta(&out), values);
        }

        #[test]
        fn any_levels_and_indices_read_back(
            width in 0u32..20,
            raw in prop::collection::vec((0u32..1 << 19, 1usize..20), 0..60),
        ) {
            let mask = if width == 0 { 0 } else { (1u32 << width) - 1 };
            let values: Vec<u32> = raw
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v & mask, n))
                .collect();
            let mut out = Vec::new();
            rle_hybrid(&values, width, &mut out);
            prop_assert_eq!(read_hybrid(&out, width, values.len()), values);
        }
    }
}
