#![doc = include_str!("../README.md")]
#![no_std]

extern crate alloc;

pub mod acpi;
#[path = "arch/x86_64/mod.rs"]
pub mod arch;
pub mod cmdline;
pub mod drivers;
pub mod fault;
#[cfg(feature = "ktest")]
pub mod ktest;
#[cfg(not(feature = "ktest"))]
pub mod link_bench;
pub mod logger;
pub mod mem;
pub mod panic;
pub mod qemu;
pub mod sampling;
pub mod sched;
pub mod sync;
#[cfg(feature = "ktest")]
pub mod tests;
pub mod time;
pub mod trace;
pub mod wasm;
#[cfg(not(feature = "ktest"))]
pub mod workload;

use core::sync::atomic::{AtomicU64, Ordering};

use lucid_boot_api::{BOOT_INFO_MAGIC, BootInfo};
// Linked for the memcpy/memset symbols the compiler emits.
use lucid_memfuncs as _;

/// What boot found out, for tests and later subsystems.
static CPU_COUNT: AtomicU64 = AtomicU64::new(0);

/// Brings the kernel up from the loader's hand-over; called by the entry shim on the
/// boot stack.
pub fn start(boot: &'static BootInfo) -> ! {
    drivers::uart::init();
    if boot.magic != BOOT_INFO_MAGIC {
        println!("lucid: bad BootInfo magic {:#x}", boot.magic);
        qemu::exit(qemu::ExitCode::Failure);
    }
    let cmdline = boot.cmdline();
    logger::init(cmdline::log_level(cmdline));

    mem::init(boot);
    let ist = arch::gdt::init_cpu();
    arch::idt::init();
    arch::percpu::init_cpu(0, arch::cpuid(1).ebx >> 24, ist);

    let platform = acpi::discover(boot.rsdp_phys);
    arch::apic::init(boot.direct_map_offset);
    mem::tlb::init();
    let (apic_hz, tsc_hz) = arch::apic::calibrate();
    time::init(tsc_hz, boot.loader_entry_tsc);
    arch::enable_interrupts();
    let cpus = platform.as_ref().map_or(1, |p| p.cpu_count.min(p.apic_ids.len()));
    trace::init(cpus);
    trace::subscriber::install();
    sched::init(cpus);
    sampling::init(cmdline);
    if let Ok(p) = &platform {
        let ids = &p.apic_ids[..cpus];
        let started = arch::smp::start_aps(ids);
        log::debug!("started {started} application processors");
    }

    let ram_mib = boot.total_ram() / (1024 * 1024);
    match &platform {
        Ok(p) => {
            CPU_COUNT.store(p.cpu_count as u64, Ordering::Relaxed);
            log::info!(
                "Lucid up: {ram_mib} MiB RAM, {} CPUs (ACPI MADT, {} online), TSC {}.{:03} MHz, APIC timer {} kHz ({}), I/O APICs {}, HPET {}",
                p.cpu_count,
                arch::percpu::online(),
                tsc_hz / 1_000_000,
                tsc_hz / 1_000 % 1_000,
                apic_hz / 1_000,
                if arch::apic::is_x2apic() { "x2APIC" } else { "xAPIC" },
                p.io_apics,
                if p.hpet.is_some() { "present" } else { "absent" },
            );
        }
        Err(e) => log::warn!(
            "Lucid up: {ram_mib} MiB RAM, CPU count unknown ({e}), TSC {}.{:03} MHz",
            tsc_hz / 1_000_000,
            tsc_hz / 1_000 % 1_000
        ),
    }
    log::info!(
        "boot took {} ms since loader entry; {} MiB free, cmdline {cmdline:?}",
        time::since_boot().as_millis(),
        mem::frames::free_frames() * 4096 / (1024 * 1024)
    );

    wasm::wasi::set_boot_epoch(cmdline::get(cmdline, "epoch"));
    let t0 = time::Instant::now();
    match wasm::init_from_boot(boot) {
        Ok(rt) => log::info!(
            "wasm: {} guest modules loaded from the boot bundle in {} ms",
            rt.guests().len(),
            t0.elapsed().as_millis()
        ),
        Err(e) => log::warn!("wasm: {e}"),
    }

    #[cfg(feature = "ktest")]
    {
        tests::platform::remember_boot(boot.rsdp_phys, cmdline);
        ktest::run(cmdline);
    }

    #[cfg(not(feature = "ktest"))]
    {
        let output = trace_output();
        if let Some(secs) = link_bench::requested(cmdline) {
            // The link bench owns the port first and starts the drain itself.
            link_bench::spawn(output, secs);
        } else {
            trace::drain::spawn(output);
            // The log heartbeat runs forever, so it belongs to the open-ended demo only.
            if matches!(cmdline::get(cmdline, "workload"), None | Some("demo" | "panic")) {
                sched::runtime().builder().name("heartbeat").spawn(heartbeat());
            }
            workload::start(cmdline);
        }
        sched::run(0)
    }
}

/// Finds the trace port (or the fallback) the drain task will write to.
#[cfg(not(feature = "ktest"))]
fn trace_output() -> trace::drain::TraceOutput {
    match drivers::virtio_serial::VirtioSerial::probe("lucid.trace") {
        Ok(dev) => {
            log::info!("trace: streaming to virtio-serial port lucid.trace");
            trace::drain::TraceOutput::Virtio(alloc::boxed::Box::new(dev))
        }
        Err(drivers::virtio_serial::ProbeError::NoDevice) => {
            log::warn!("trace: no virtio-serial device; streaming to COM2 at reduced rate");
            trace::drain::TraceOutput::Uart(drivers::uart::Uart::init(drivers::uart::COM2))
        }
        Err(e) => {
            log::warn!("trace: {e}; events are counted as dropped");
            trace::drain::TraceOutput::None
        }
    }
}

/// Says every few seconds that the kernel is alive, with what the schedulers did.
#[cfg(not(feature = "ktest"))]
async fn heartbeat() {
    let mut beats = 0u64;
    loop {
        sched::sleep(core::time::Duration::from_secs(5)).await;
        beats += 1;
        let rt = sched::runtime();
        let (polls, steals) = rt
            .schedulers()
            .iter()
            .map(|s| s.counters())
            .fold((0, 0), |(p, st), c| (p + c.polls, st + c.steals));
        tracing::info!(
            uptime_s = beats * 5,
            free_mib = mem::frames::free_frames() * 4096 / (1024 * 1024),
            heap_kib = mem::heap::mapped_bytes() / 1024,
            polls,
            steals,
            "alive"
        );
        if sampling::rate() > 0 {
            let (samples, ticks) = sampling::cost();
            let elapsed = (arch::rdtsc() - time::boot_tsc()) * cpu_count().max(1);
            log::info!(
                "sampling: {samples} samples, {} TSC ticks each, {} ppm of CPU time",
                ticks / samples.max(1),
                u128::from(ticks) * 1_000_000 / u128::from(elapsed.max(1))
            );
        }
    }
}

/// CPUs ACPI reported (0 if ACPI failed).
pub fn cpu_count() -> u64 {
    CPU_COUNT.load(Ordering::Relaxed)
}

/// Names the task (and CPU) that was running, for the reports of faults and of
/// panics that stop the kernel.
pub fn report_current_task() {
    let cpu = arch::percpu::try_current().map(|c| c.index);
    let task = sched::try_runtime().and_then(|rt| rt.current_task_info());
    let line = |args: core::fmt::Arguments<'_>| {
        // SAFETY: the kernel stops right after; interleaving with a lock holder is fine.
        unsafe { drivers::uart::force_write_fmt(args) }
    };
    match (cpu, task) {
        (Some(cpu), Some(t)) => line(format_args!(
            "    on CPU {cpu} in task {} `{}` spawned at {}\n",
            t.id.as_u64(),
            t.name.unwrap_or("<unnamed>"),
            t.location
        )),
        (Some(cpu), None) => line(format_args!("    on CPU {cpu}, outside any task\n")),
        _ => line(format_args!("    before per-CPU data was set up\n")),
    }
}
