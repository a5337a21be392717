//! Link the kernel as a static, non-PIE, higher-half ELF with its own linker script.
//! `-bins` keeps these flags off build scripts and proc-macros.
//!
//! The script is linked from a copy in `OUT_DIR`: a build cache shared by clones at
//! different paths reuses this script's output without running it again, and a path
//! into the clone that last ran it would name a file that may be gone.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    let script = std::path::Path::new(&out).join("linker.ld");
    std::fs::copy(std::path::Path::new(&dir).join("linker.ld"), &script).expect("copy linker.ld to OUT_DIR");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=4096",
        // `__GNU_EH_FRAME_HDR` and its search table, for unwinding a panicking task.
        "-Wl,--eh-frame-hdr",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
