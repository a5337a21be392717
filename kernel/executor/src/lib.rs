#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
pub mod frame;
#[cfg(feature = "alloc")]
pub mod holders;
#[cfg(feature = "alloc")]
pub mod hooks;
#[cfg(feature = "alloc")]
pub(crate) mod loom;
#[cfg(feature = "alloc")]
pub mod platform;

#[cfg(feature = "alloc")]
mod registry;
#[cfg(feature = "alloc")]
pub mod resource;
#[cfg(feature = "alloc")]
mod runtime;
#[cfg(feature = "alloc")]
mod spin;
#[cfg(all(any(test, feature = "std"), not(loom)))]
mod std_platform;
#[cfg(feature = "alloc")]
pub mod sync;
#[cfg(feature = "alloc")]
pub mod task;
#[cfg(feature = "alloc")]
pub mod time;

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(feature = "alloc")]
pub use frame::{FrameExt, Framed};
#[cfg(feature = "alloc")]
pub use hooks::{Hooks, Outcome, SpawnInfo};
#[cfg(feature = "alloc")]
pub use platform::{PanicCaught, PanicLocation, Platform, TaskPanic};
#[cfg(feature = "alloc")]
pub use registry::{LiveState, LiveTask};
#[cfg(feature = "alloc")]
pub use runtime::{CurrentTask, Runtime, Scheduler, SchedulerCounters, TICK_BUDGET, TaskBuilder, Tick};
#[cfg(all(any(test, feature = "std"), not(loom)))]
pub use std_platform::ThreadPlatform;
#[cfg(feature = "alloc")]
pub use task::{
    Header, JoinError, JoinHandle, PollResult, TaskCounters, TaskId, TaskKind, TaskRef, TaskStats, YieldNow, yield_now,
};
#[cfg(feature = "alloc")]
pub use time::{Elapsed, Instant, Timer};
