//! `workload=wasm-bench`: what `cargo xtask bench` reports for the wasm host, all in
//! one boot so the ratios compare like with like: the `hasher` guest's `hash` export
//! and the `rust_fnv` guest (the same Rust compiled for wasm32-wasi) against the same
//! FNV-1a loop in kernel Rust, the round trip of a cheap hostcall
//! (`now`), and instantiating a module from its loaded `.cwasm`. Results are printed
//! to COM1 as `bench NAME VALUE UNIT` lines.

use alloc::vec;
use core::time::Duration;

use wasmtime::{Store, TypedFunc};

use super::Runtime;
use super::instance::{self, InstanceData, Outcome};
use crate::{println, time::Instant};

/// Rounds of 64 KiB hashed per measurement.
const HASH_ROUNDS: i32 = 40;
/// Hostcalls per measurement.
const HOSTCALLS: i32 = 200_000;
/// Instantiations per measurement.
const INSTANTIATIONS: u32 = 200;
/// Measurements per figure (the median is reported).
const RUNS: usize = 5;

/// The `hasher` and `rust_fnv` guests' algorithm in kernel Rust: FNV-1a over `buf`,
/// the hash fed back into its first 8 bytes after every round. `buf` persists
/// across calls, like a guest's memory.
fn native_hash(buf: &mut [u8], rounds: i32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..rounds {
        for &b in core::hint::black_box(&*buf) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        buf[..8].copy_from_slice(&h.to_le_bytes());
    }
    h
}

fn median(mut v: [f64; RUNS]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[RUNS / 2]
}

fn report(name: &str, value: f64, unit: &str) {
    println!("bench {name} {value:.3} {unit}");
}

/// A fresh instance of `module` (in the calling task) and its `(i32) -> i64` export.
async fn export(
    rt: &'static Runtime,
    module: &str,
    name: &str,
) -> Result<(Store<InstanceData>, TypedFunc<i32, i64>), alloc::string::String> {
    use alloc::string::ToString;
    let err = |e: wasmtime::Error| e.to_string();
    let guest = rt.guest(module).ok_or_else(|| alloc::format!("no {module} module"))?;
    let mut store = instance::bench_store(guest).map_err(err)?;
    let inst = rt
        .linker(guest)
        .instantiate_async(&mut store, &guest.module)
        .await
        .map_err(err)?;
    let func = inst.get_typed_func(&mut store, name).map_err(err)?;
    Ok((store, func))
}

/// Runs every measurement and reports it; `Err` says what failed.
pub async fn run(rt: &'static Runtime) -> Result<(), alloc::string::String> {
    use alloc::string::ToString;
    let err = |e: wasmtime::Error| e.to_string();
    let (mut store, hash) = export(rt, "hasher", "hash").await?;
    let (mut native, mut guest) = ([0.0; RUNS], [0.0; RUNS]);
    let mut buf = vec![0u8; 65536];
    for i in 0..RUNS {
        let t = Instant::now();
        let want = native_hash(&mut buf, HASH_ROUNDS);
        native[i] = t.elapsed().as_nanos() as f64;
        let t = Instant::now();
        let got = hash.call_async(&mut store, HASH_ROUNDS).await.map_err(err)? as u64;
        guest[i] = t.elapsed().as_nanos() as f64;
        if got != want {
            return Err(alloc::format!("guest hash {got:#x} differs from native {want:#x}"));
        }
    }
    let bytes = f64::from(HASH_ROUNDS) * 65536.0;
    report("wasm.native_hash_ns_per_byte", median(native) / bytes, "ns/byte");
    report("wasm.guest_hash_ns_per_byte", median(guest) / bytes, "ns/byte");
    report("wasm.guest_vs_native", median(guest) / median(native), "x");

    // The same Rust compiled for wasm32-wasi, run as a whole program (instance,
    // WASI start-up and exit included) from a zeroed buffer each time.
    let (mut native, mut rust) = ([0.0; RUNS], [0.0; RUNS]);
    for i in 0..RUNS {
        let mut buf = vec![0u8; 65536];
        let t = Instant::now();
        let want = native_hash(&mut buf, HASH_ROUNDS);
        native[i] = t.elapsed().as_nanos() as f64;
        let t = Instant::now();
        let (_, handle) = rt.spawn("rust_fnv").map_err(|e| e.to_string())?;
        let outcome = handle
            .await
            .map_err(|e| alloc::format!("rust_fnv's task failed: {e:?}"))?;
        rust[i] = t.elapsed().as_nanos() as f64;
        let code = i32::try_from(want & 0x7f).unwrap_or(0);
        if outcome != Outcome::Exited(code) {
            return Err(alloc::format!(
                "rust_fnv ended {outcome:?}, not with the native hash's exit code {code}"
            ));
        }
    }
    report("wasm.rust_guest_vs_native", median(rust) / median(native), "x");

    let (mut store, many) = export(rt, "t_hostcalls", "calls").await?;
    let calls = rt.guest("t_hostcalls").ok_or("no t_hostcalls module")?;
    let mut per_call = [0.0; RUNS];
    for v in &mut per_call {
        let t = Instant::now();
        many.call_async(&mut store, HOSTCALLS).await.map_err(err)?;
        *v = t.elapsed().as_nanos() as f64 / f64::from(HOSTCALLS);
    }
    report("wasm.hostcall_round_trip_ns", median(per_call), "ns");

    let mut per_instance = [0.0; RUNS];
    for v in &mut per_instance {
        let t = Instant::now();
        for _ in 0..INSTANTIATIONS {
            let mut store = instance::bench_store(calls).map_err(err)?;
            rt.linker(calls)
                .instantiate_async(&mut store, &calls.module)
                .await
                .map_err(err)?;
        }
        *v = t.elapsed().as_nanos() as f64 / f64::from(INSTANTIATIONS) / 1e3;
    }
    report("wasm.instantiate_us", median(per_instance), "us");
    // Let the log drain before the caller ends the run.
    crate::sched::sleep(Duration::from_millis(10)).await;
    Ok(())
}
