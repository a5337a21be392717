//! Empty stand-in for `memfd` 0.6. wasmtime's `runtime` feature names `memfd` as a
//! dependency on every Linux target but only uses it with `std`; the real crate pulls
//! in `rustix` with std, which a freestanding kernel cannot link. See
//! `kernel/patched/README.md`.
#![no_std]
