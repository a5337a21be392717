//! A [`Platform`] for host threads: each thread that runs a scheduler calls
//! [`ThreadPlatform::enter`] with its CPU index.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, PoisonError};
use std::vec::Vec;

use crate::platform::{PanicCaught, Platform, TaskPanic};

std::thread_local! {
    static CURRENT_CPU: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Host threads as CPUs: idling parks on a condition variable with a wake-up
/// token (so a wake before the park is not lost), and panics are contained
/// with `std::panic::catch_unwind` (with the message of a string payload; the
/// location is not known here).
#[derive(Debug)]
pub struct ThreadPlatform {
    tokens: Vec<(Mutex<bool>, Condvar)>,
}

impl ThreadPlatform {
    /// A platform for `cpus` CPUs, leaked so a `Runtime` can hold it.
    #[must_use]
    pub fn new(cpus: usize) -> &'static Self {
        std::boxed::Box::leak(std::boxed::Box::new(Self {
            tokens: (0..cpus).map(|_| (Mutex::new(false), Condvar::new())).collect(),
        }))
    }

    /// Makes the calling thread CPU `cpu` (or no CPU, with `None`).
    pub fn enter(cpu: Option<usize>) {
        CURRENT_CPU.with(|c| c.set(cpu));
    }
}

impl Platform for ThreadPlatform {
    fn current_cpu(&self) -> Option<usize> {
        CURRENT_CPU.with(Cell::get)
    }

    fn idle(&self, cpu: usize) {
        let (lock, cvar) = &self.tokens[cpu];
        let mut token = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !*token {
            token = cvar.wait(token).unwrap_or_else(PoisonError::into_inner);
        }
        *token = false;
    }

    fn wake_cpu(&self, cpu: usize) {
        let (lock, cvar) = &self.tokens[cpu];
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cvar.notify_one();
    }

    fn catch_unwind(&self, poll: &mut dyn FnMut()) -> Result<(), PanicCaught> {
        catch_unwind(AssertUnwindSafe(poll)).map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).into())
                .or_else(|| payload.downcast_ref::<std::string::String>().cloned())
                .unwrap_or_default();
            PanicCaught(TaskPanic {
                message,
                location: None,
            })
        })
    }
}
