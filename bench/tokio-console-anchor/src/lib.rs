//! The tokio side of `cargo xtask bench`'s workloads, shared by the bench example
//! (`kernel/executor/examples/bench.rs`, bare tokio rows) and this crate's binary
//! (the console-subscriber anchor), so both always time the same work and
//! summarise their runs the same way ([`median`]).
#![forbid(unsafe_code)]

/// The median of `values` (the mean of the middle two for an even count).
///
/// # Panics
///
/// If `values` is empty.
#[must_use]
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub mod workloads {
    //! The workloads, as in `docs/benchmarks.md`. The Lucid side of the bench example
    //! uses these constants too.

    /// Tasks in the spawn+join workload.
    pub const TASKS: usize = 100_000;
    /// `yield_now` calls per task (so each task is polled `YIELDS + 1` times).
    pub const YIELDS: usize = 10;
    /// Ping-pong pairs.
    pub const PAIRS: usize = 1_000;
    /// Round trips per pair.
    pub const TRIPS: u32 = 100;
    /// Capacity of each ping-pong channel: every send after the first waits for the peer.
    pub const CHANNEL_CAPACITY: usize = 1;

    /// Spawns [`TASKS`] tasks that yield [`YIELDS`] times and joins them in order.
    pub async fn spawn_join() {
        let mut handles = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            handles.push(tokio::spawn(async {
                for _ in 0..YIELDS {
                    tokio::task::yield_now().await;
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }

    /// [`PAIRS`] ping/pong task pairs over two channels, [`TRIPS`] round trips each.
    pub async fn ping_pong() {
        use tokio::sync::mpsc;
        let mut handles = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            handles.push(tokio::spawn(async move {
                for i in 0..TRIPS {
                    ping_tx.send(i).await.expect("pong is alive");
                    assert_eq!(pong_rx.recv().await, Some(i));
                }
            }));
            handles.push(tokio::spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.expect("ping is alive");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }
}
