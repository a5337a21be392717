//! Bench guest (`workload=wasm-bench`): FNV-1a over 64 KiB, as many rounds as its
//! argument says, the hash fed back into the buffer's first 8 bytes after each
//! round: the same Rust as the kernel's `native_hash` (`kernel/src/wasm/bench.rs`),
//! compiled for wasm32-wasi. It exits with the hash's low 7 bits, which the bench
//! checks against the native result.

fn hash(buf: &mut [u8], rounds: u32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..rounds {
        for &b in buf.iter() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        buf[..8].copy_from_slice(&h.to_le_bytes());
    }
    h
}

fn main() {
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let mut buf = vec![0u8; 65536];
    let h = hash(&mut buf, rounds);
    std::process::exit((h & 0x7f) as i32);
}
