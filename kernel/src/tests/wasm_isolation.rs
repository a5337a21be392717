//! Hostile guests (`t_pin`, `t_spawn_storm`, `t_log_flood`, `t_forge_handle`)
//! against the wasm host's isolation: each test checks that the kernel keeps
//! running, that a concurrent guest and a kernel task keep making progress, that
//! the offender's calls fail (or it ends) with the documented code, and that the
//! kernel heap grows by a bounded amount.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use lucid_executor::JoinHandle;
use lucid_ktest_macros::ktest;
use lucid_wasm::abi::{
    ERR_LIMIT, ERR_NO_MEMORY, FUEL_PER_BYTE, KillReason, LOG_FUEL, MAX_LOG_LEN, MAX_TREE_INSTANCES, TrapCode,
};

use crate::mem::heap;
use crate::sched::{self, block_on};
use crate::time::Instant;
use crate::wasm::{self, InstanceId, Outcome, budget};

const MIB: u64 = 1024 * 1024;

fn rt() -> &'static wasm::Runtime {
    wasm::runtime().expect("the boot bundle loaded")
}

/// Runs the executor until `done` or `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    block_on(async {
        while !done() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            sched::sleep(Duration::from_millis(5)).await;
        }
    });
}

fn join(name: &str, handle: JoinHandle<Outcome>) -> Outcome {
    block_on(async { sched::timeout(Duration::from_secs(30), handle).await })
        .unwrap_or_else(|_| panic!("{name} did not end within 30 s"))
        .unwrap_or_else(|e| panic!("{name}'s task failed: {e:?}"))
}

/// Waits until instances from earlier tests are gone and nothing is charged.
fn quiesce() {
    wait_for(Duration::from_secs(10), "earlier instances to end", || {
        rt().live_instances() == 0
    });
    assert_eq!(
        budget::charged(),
        0,
        "kernel memory still charged with no instance alive"
    );
}

static TICKS: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// A well-behaved guest (the `sleeper` demo, 50 ms ticks) and a kernel task
/// (a 5 ms tick) that must keep making progress while a hostile guest runs.
struct Bystanders {
    sleeper: InstanceId,
    sleeper_task: JoinHandle<Outcome>,
    ticker: JoinHandle<()>,
    seen: (u64, u64),
}

impl Bystanders {
    fn start() -> Self {
        STOP.store(false, Ordering::Relaxed);
        let (sleeper, sleeper_task) = rt().spawn("sleeper").expect("spawn the sleeper");
        let ticker = sched::runtime().builder().name("bystander").spawn(async {
            while !STOP.load(Ordering::Relaxed) {
                TICKS.fetch_add(1, Ordering::Relaxed);
                sched::sleep(Duration::from_millis(5)).await;
            }
        });
        let mut b = Self {
            sleeper,
            sleeper_task,
            ticker,
            seen: (0, 0),
        };
        b.seen = b.now();
        b
    }

    fn now(&self) -> (u64, u64) {
        let sleeps = wasm::stats(self.sleeper).expect("the sleeper is alive").hostcalls;
        (sleeps, TICKS.load(Ordering::Relaxed))
    }

    /// Both made progress since the last check (waiting up to 2 s for it).
    fn assert_progress(&mut self, during: &str) {
        let before = self.seen;
        let mut now = before;
        wait_for(
            Duration::from_secs(2),
            &alloc::format!("the bystanders to progress during {during}"),
            || {
                now = self.now();
                now.0 >= before.0 + 2 && now.1 >= before.1 + 2
            },
        );
        self.seen = now;
    }

    fn stop(self) {
        STOP.store(true, Ordering::Relaxed);
        self.sleeper_task.cancel();
        let _ = block_on(self.ticker);
    }
}

#[ktest]
fn wasm_pinning_kernel_memory_through_channels_is_refused_at_the_budget() {
    quiesce();
    let heap_before = heap::mapped_bytes();
    let mut bystanders = Bystanders::start();
    // 24 trees at once (48 instances), each trying to queue 32 channels x 16 x
    // 64 KiB = 32 MiB: 768 MiB asked of a kernel with 512 MiB of RAM.
    const PINNERS: usize = 24;
    let pinners: Vec<_> = (0..PINNERS)
        .map(|_| rt().spawn("t_pin").expect("spawn t_pin"))
        .collect();
    let limit = rt().guest("t_pin").expect("t_pin").entry.kernel_memory_budget;
    for (_, handle) in pinners {
        // Every pinner's send is refused by its budget: it returns ERR_NO_MEMORY.
        assert_eq!(join("t_pin", handle), Outcome::Exited(ERR_NO_MEMORY));
    }
    // Its holders keep the queued messages alive: the trees are charged nearly
    // their whole budget, never more.
    let charged = budget::charged() as u64;
    assert!(
        charged <= PINNERS as u64 * limit,
        "{charged} bytes charged to {PINNERS} trees of {limit}"
    );
    assert!(
        charged >= PINNERS as u64 * (limit - 128 * 1024),
        "only {charged} bytes charged: the pinners did not fill their budgets"
    );
    bystanders.assert_progress("the pinning");
    let growth = heap::mapped_bytes().saturating_sub(heap_before);
    crate::println!(
        "pinning: {PINNERS} trees charged {charged} bytes (budget {limit} each); kernel heap grew {growth} bytes"
    );
    // The charged bytes plus the instances themselves (their linear memories are
    // at most 2 pages each) and the heap's doubling: well under what the pinners
    // asked for.
    assert!(
        growth <= 2 * (charged + 16 * MIB),
        "kernel heap grew {growth} bytes for {charged} charged"
    );
    // The holders end, the queued messages are freed and every byte is credited
    // back.
    wait_for(Duration::from_secs(10), "the holders to end", || {
        rt().live_instances() == 1
    });
    assert_eq!(budget::charged(), 0, "bytes still charged after every pinner ended");
    bystanders.assert_progress("the holders' end");
    bystanders.stop();
}

#[ktest]
fn wasm_spawn_storms_stop_at_the_tree_and_kernel_limits() {
    quiesce();
    let heap_before = heap::mapped_bytes();
    let mut bystanders = Bystanders::start();
    // One storm: its tree stops at MAX_TREE_INSTANCES.
    let (_, storm) = rt().spawn("t_spawn_storm").expect("spawn t_spawn_storm");
    let mut peak = 0;
    wait_for(Duration::from_secs(20), "the storm to be refused", || {
        peak = peak.max(rt().live_instances());
        storm.is_finished()
    });
    assert_eq!(join("t_spawn_storm", storm), Outcome::Exited(ERR_LIMIT));
    assert!(
        peak <= MAX_TREE_INSTANCES + 1,
        "{peak} instances alive for one tree (+ the sleeper)"
    );
    bystanders.assert_progress("one spawn storm");
    wait_for(Duration::from_secs(10), "the storm's children to end", || {
        rt().live_instances() == 1
    });
    // Five storms: together they would be 80 instances; the kernel stops at
    // MAX_INSTANCES and refuses every storm the same way.
    let mut storms = Vec::new();
    for _ in 0..5 {
        // The storms started first may already fill the kernel: the kernel
        // refuses a later one the same way it refuses their children.
        match rt().spawn("t_spawn_storm") {
            Ok((_, storm)) => storms.push(storm),
            Err(e) => assert_eq!(e, wasm::SpawnError::TooManyInstances),
        }
    }
    let mut peak = 0;
    wait_for(Duration::from_secs(30), "every storm to be refused", || {
        peak = peak.max(rt().live_instances());
        storms.iter().all(JoinHandle::is_finished)
    });
    for storm in storms {
        assert_eq!(join("t_spawn_storm", storm), Outcome::Exited(ERR_LIMIT));
    }
    assert!(peak <= wasm::MAX_INSTANCES, "{peak} instances alive");
    // It was the kernel's limit that stopped them (a root that was refused ends
    // and frees its place, so the peak may fall a little short of it).
    assert!(
        peak + 8 >= wasm::MAX_INSTANCES,
        "only {peak} instances alive at the peak"
    );
    bystanders.assert_progress("five spawn storms");
    wait_for(Duration::from_secs(15), "the storms' children to end", || {
        rt().live_instances() == 1
    });
    let growth = heap::mapped_bytes().saturating_sub(heap_before);
    crate::println!("spawn storms: peak {peak} instances; kernel heap grew {growth} bytes");
    assert!(growth <= 64 * MIB, "kernel heap grew {growth} bytes");
    bystanders.stop();
    assert_eq!(budget::charged(), 0);
}

#[ktest]
fn wasm_a_log_flood_is_cut_escaped_and_paid_for_in_fuel() {
    quiesce();
    let heap_before = heap::mapped_bytes();
    let mut bystanders = Bystanders::start();
    let (id, flood) = rt().spawn("t_log_flood").expect("spawn t_log_flood");
    // 20 logs (a hostcall is counted when it returns), then it sleeps for 10 s;
    // its poll that blocks in the sleep reports the fuel of the last log.
    wait_for(Duration::from_secs(20), "the flood's 20 logs", || {
        wasm::stats(id).is_some_and(|s| s.hostcalls >= 20)
    });
    block_on(sched::sleep(Duration::from_millis(200)));
    let fuel = wasm::stats(id).expect("the flood sleeps").fuel;
    // Each 64 KiB message was cut to MAX_LOG_LEN bytes and cost fuel for them.
    let cost = 20 * (LOG_FUEL + FUEL_PER_BYTE * MAX_LOG_LEN as u64);
    assert!(
        fuel >= cost,
        "20 logs of {MAX_LOG_LEN} bytes cost only {fuel} fuel (< {cost})"
    );
    bystanders.assert_progress("the log flood");
    flood.cancel();
    let growth = heap::mapped_bytes().saturating_sub(heap_before);
    crate::println!("log flood: {fuel} fuel for 20 logs; kernel heap grew {growth} bytes");
    // Logging copies nothing: 20 x 64 KiB did not reach the heap.
    assert!(growth <= MIB, "kernel heap grew {growth} bytes");
    bystanders.stop();
}

#[ktest]
fn wasm_a_forged_handle_traps_only_its_instance() {
    quiesce();
    let mut bystanders = Bystanders::start();
    let (_, forger) = rt().spawn("t_forge_handle").expect("spawn t_forge_handle");
    match join("t_forge_handle", forger) {
        Outcome::Trapped(TrapCode::HostcallBadHandle, reason) => {
            assert!(reason.contains("handle 1"), "reason: {reason}");
        }
        other => panic!("t_forge_handle: expected a hostcall_bad_handle trap, got {other:?}"),
    }
    bystanders.assert_progress("the forgery");
    bystanders.stop();
    wait_for(Duration::from_secs(10), "the sleeper to end", || {
        rt().live_instances() == 0
    });
    // The channel it did create was freed with it.
    assert_eq!(budget::charged(), 0);
}

#[ktest]
fn wasm_guests_that_ignore_refusals_are_killed_with_the_reason() {
    quiesce();
    let mut bystanders = Bystanders::start();
    // All three at once: each keeps calling after it is refused.
    let hostile: Vec<_> = [
        ("hostile_pin", KillReason::Memory),
        ("hostile_storm", KillReason::Instances),
        ("hostile_log", KillReason::Log),
    ]
    .into_iter()
    .map(|(name, reason)| (name, reason, rt().spawn(name).expect("spawn a hostile guest").1))
    .collect();
    for (name, reason, handle) in hostile {
        assert_eq!(join(name, handle), Outcome::Killed(reason), "{name}");
    }
    bystanders.assert_progress("the hostile guests");
    // Their holders end, and everything they pinned is credited back.
    wait_for(Duration::from_secs(10), "the holders to end", || {
        rt().live_instances() == 1
    });
    assert_eq!(
        budget::charged(),
        0,
        "bytes still charged after the hostile guests ended"
    );
    bystanders.assert_progress("the holders' end");
    bystanders.stop();
}

#[ktest]
fn wasm_budgets_refuse_past_the_tree_and_the_kernel_limit() {
    use budget::{Budget, KERNEL_LIMIT, Refusal};
    quiesce();
    let tree = Budget::new(4096);
    let most = tree.charge(4000).expect("within the tree's budget");
    assert_eq!(tree.charge(97).map(drop), Err(Refusal::NoMemory));
    let rest = tree.charge(96).expect("exactly up to the tree's budget");
    assert_eq!(tree.used(), 4096);
    drop((most, rest));
    assert_eq!((tree.used(), budget::charged()), (0, 0), "charges are given back");
    // All trees together stop at KERNEL_LIMIT, whatever their own budgets say.
    let huge = Budget::new(usize::MAX);
    let hog = huge.charge(KERNEL_LIMIT - 10).expect("up to the kernel limit");
    assert_eq!(tree.charge(11).map(drop), Err(Refusal::NoMemory));
    assert_eq!(tree.used(), 0, "a refused charge leaves the tree unchanged");
    assert!(tree.charge(10).is_ok());
    drop(hog);
    assert_eq!(budget::charged(), 0);
    let members: Vec<_> = (0..MAX_TREE_INSTANCES)
        .map(|_| tree.join().expect("a member"))
        .collect();
    assert_eq!(tree.join().map(drop), Err(Refusal::TooManyInstances));
    drop(members);
    assert!(tree.join().is_ok(), "members that end free their places");
}
