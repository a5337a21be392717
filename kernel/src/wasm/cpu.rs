//! Which ISA features this CPU has, answered from CPUID for wasmtime's check that a
//! `.cwasm` only uses instructions the CPU can run.

use crate::arch::cpuid;

/// [`wasmtime::Config::detect_host_feature`] for the kernel. Names are the Rust
/// standard library's (`is_x86_feature_detected!`).
pub fn detect(feature: &str) -> Option<bool> {
    let leaf1 = cpuid(1);
    let leaf7 = cpuid(7);
    let ext1 = cpuid(0x8000_0001);
    let bit = |reg: u32, n: u32| Some(reg & (1 << n) != 0);
    match feature {
        "sse3" => bit(leaf1.ecx, 0),
        "ssse3" => bit(leaf1.ecx, 9),
        "fma" => bit(leaf1.ecx, 12),
        "sse4.1" => bit(leaf1.ecx, 19),
        "sse4.2" => bit(leaf1.ecx, 20),
        "popcnt" => bit(leaf1.ecx, 23),
        // AVX also needs the OS to enable the YMM state, which this kernel does not.
        "avx" | "avx2" | "avx512f" | "avx512vl" | "avx512dq" | "avx512bw" | "avx512vbmi" | "avx512bitalg"
        | "avx512vpopcntdq" | "avxvnni" | "f16c" => Some(false),
        "bmi1" => bit(leaf7.ebx, 3),
        "bmi2" => bit(leaf7.ebx, 8),
        "lzcnt" => bit(ext1.ecx, 5),
        "cmpxchg16b" => bit(leaf1.ecx, 13),
        _ => None,
    }
}
