//! Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so 0x00 can
//! delimit frames, at a cost of at most one byte per 254.
//!
//! Hand-written rather than taken from a crate so that both directions work on
//! caller-provided slices without allocation and report a short buffer as an error
//! instead of panicking.

/// Upper bound of the encoded length of `n` raw bytes, without the 0x00 delimiter.
#[inline]
#[must_use]
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// Encodes `src` into `dst` (no delimiter). Returns the encoded length, or `None` if
/// `dst` is too small.
///
/// When no block is full (a zero at least every 254 bytes, as in trace frames) the
/// output is `src` one place on, each zero replaced by the next block's code and the
/// first code in front: a copy and a scan for zeros a word at a time, with nothing
/// depending on the previous block. Sealing frames is on the drain's path, and trace
/// records have a zero every few bytes, so finding blocks one by one and copying each
/// spent most of its time starting and ending them. Any other input takes the
/// block-by-block path.
#[must_use]
pub fn encode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    encode_short_blocks(src, dst).or_else(|| encode_blocks(src, dst))
}

/// [`encode`] when every block is shorter than 254 bytes; `None` otherwise (or when
/// `dst` is too small), with `dst` partly written.
fn encode_short_blocks(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    const LOWS: u64 = u64::from_ne_bytes([0x7f; 8]);
    let n = src.len();
    dst.get_mut(1..n + 1)?.copy_from_slice(src);
    // The open block's code byte is at `code_at`; a zero at `src[j]` closes it with
    // code `j + 1 - code_at` and puts the next block's code in its place.
    let mut code_at = 0usize;
    let mut close = |zero_at: usize, dst: &mut [u8]| {
        let code = zero_at + 1 - code_at;
        if code > 254 {
            return None;
        }
        *dst.get_mut(code_at)? = code as u8;
        code_at = zero_at + 1;
        Some(())
    };
    let words = src.chunks_exact(8);
    let tail = words.remainder();
    let mut padded = [0xffu8; 8];
    padded[..tail.len()].copy_from_slice(tail);
    for (i, word) in words.chain(core::iter::once(&padded[..])).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        // The high bit of each zero byte, and of no other.
        let mut zeros = !(((w & LOWS) + LOWS) | w | LOWS);
        while zeros != 0 {
            close(i * 8 + (zeros.trailing_zeros() / 8) as usize, dst)?;
            zeros &= zeros - 1;
        }
    }
    close(n, dst)?;
    Some(n + 1)
}

/// [`encode`] block by block.
fn encode_blocks(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let mut out = 0usize;
    let mut rest = src;
    loop {
        let window = rest.get(..rest.len().min(254))?;
        let (run, zero) = match window.iter().position(|&b| b == 0) {
            Some(i) => (i, true),
            None => (window.len(), false),
        };
        let block = dst.get_mut(out..out + 1 + run)?;
        let (code, data) = block.split_first_mut()?;
        // run <= 254, so the code is at most 0xff.
        *code = run as u8 + 1;
        data.copy_from_slice(window.get(..run)?);
        out += 1 + run;
        if zero {
            rest = rest.get(run + 1..)?;
        } else if run == 254 {
            // A full block has no implied zero; the next block continues the data.
            rest = rest.get(run..)?;
        } else {
            return Some(out);
        }
    }
}

/// Why a COBS block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CobsError;

/// Decodes in place: the decoded bytes are never longer than the encoded ones, so the
/// result is written over the input's head. Returns the decoded length.
pub fn decode_in_place(buf: &mut [u8]) -> Result<usize, CobsError> {
    let mut read = 0usize;
    let mut write = 0usize;
    while let Some(&code) = buf.get(read) {
        if code == 0 {
            return Err(CobsError);
        }
        let start = read + 1;
        let end = start + usize::from(code) - 1;
        let data = buf.get(start..end).ok_or(CobsError)?;
        if data.contains(&0) {
            return Err(CobsError);
        }
        buf.copy_within(start..end, write);
        write += end - start;
        read = end;
        // A code below 0xff stands for a zero, except at the very end of the block.
        if code != 0xff && read < buf.len() {
            *buf.get_mut(write).ok_or(CobsError)? = 0;
            write += 1;
        }
    }
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain block-by-block encoder `encode` must match byte for byte.
    fn reference(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for block in src.split(|&b| b == 0) {
            let mut chunks = block.chunks(254).peekable();
            if chunks.peek().is_none() {
                out.push(1);
            }
            while let Some(chunk) = chunks.next() {
                out.push(chunk.len() as u8 + 1);
                out.extend_from_slice(chunk);
                if chunk.len() == 254 && chunks.peek().is_none() {
                    out.push(1);
                }
            }
        }
        out
    }

    fn round_trip(data: &[u8]) {
        let mut enc = vec![0u8; max_encoded_len(data.len())];
        let n = encode(data, &mut enc).unwrap();
        assert!(!enc[..n].contains(&0));
        let mut dec = enc[..n].to_vec();
        let m = decode_in_place(&mut dec).unwrap();
        assert_eq!(&dec[..m], data);
    }

    #[test]
    fn known_vectors() {
        let mut out = [0u8; 8];
        assert_eq!(encode(&[], &mut out), Some(1));
        assert_eq!(out[0], 1);
        assert_eq!(encode(&[0], &mut out), Some(2));
        assert_eq!(&out[..2], &[1, 1]);
        assert_eq!(encode(&[0x11, 0x22, 0x00, 0x33], &mut out), Some(5));
        assert_eq!(&out[..5], &[3, 0x11, 0x22, 2, 0x33]);
    }

    #[test]
    fn a_full_block_at_the_end_gets_a_closing_code() {
        let mut out = [0u8; 260];
        assert_eq!(encode(&[7u8; 254], &mut out), Some(256));
        assert_eq!((out[0], out[254], out[255]), (0xff, 7, 1));
        assert_eq!(encode(&[7, 0], &mut out), Some(3));
        assert_eq!(&out[..3], &[2, 7, 1]);
    }

    #[test]
    fn long_runs() {
        round_trip(&[1u8; 254]);
        round_trip(&[1u8; 255]);
        round_trip(&[1u8; 600]);
        round_trip(&[0u8; 300]);
    }

    #[test]
    fn short_output_is_an_error() {
        let mut out = [0u8; 3];
        assert_eq!(encode(&[1, 2, 3, 4], &mut out), None);
        assert_eq!(encode(&[0, 0, 0, 0], &mut out), None);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(decode_in_place(&mut [5, 1]), Err(CobsError));
        assert_eq!(decode_in_place(&mut [2, 0]), Err(CobsError));
    }

    proptest! {
        #[test]
        fn cobs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
            round_trip(&data);
        }

        #[test]
        fn cobs_matches_the_plain_encoder_and_refuses_a_short_output(
            mut data in proptest::collection::vec(prop_oneof![Just(0u8), 1u8..=255], 0..400),
            runs in proptest::collection::vec((0usize..600, any::<bool>()), 0..6),
            slack in 0usize..12,
        ) {
            // Long runs without a zero, around the 254-byte block.
            for (len, zero) in runs {
                data.extend((0..len).map(|i| (i % 255) as u8 + 1));
                if zero {
                    data.push(0);
                }
            }
            let expected = reference(&data);
            let mut enc = vec![0u8; max_encoded_len(data.len())];
            prop_assert_eq!(encode(&data, &mut enc).map(|n| enc[..n].to_vec()), Some(expected.clone()));
            let mut exact = vec![0u8; expected.len() + slack];
            prop_assert_eq!(encode(&data, &mut exact), Some(expected.len()));
            prop_assert_eq!(&exact[..expected.len()], &expected[..]);
            if expected.len() > slack {
                let mut short = vec![0u8; expected.len() - 1 - slack.min(expected.len() - 1)];
                prop_assert_eq!(encode(&data, &mut short), None);
            }
        }

        #[test]
        fn decode_never_panics(mut data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_in_place(&mut data);
        }
    }
}
