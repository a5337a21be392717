//! The crate's one door to atomics, cells and threads.
//!
//! Under `--cfg loom` everything concurrent in this crate runs on loom's
//! instrumented types so the models in `loom_models` explore every
//! interleaving; otherwise these are `core`'s types at zero cost. cordyceps
//! switches its own atomics to loom under the same cfg, so its queues and
//! lists are checked too.

#[cfg(loom)]
mod inner {
    pub(crate) mod atomic {
        pub(crate) use core::sync::atomic::Ordering;
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, fence};
    }
    pub(crate) mod cell {
        pub(crate) use loom::cell::UnsafeCell;
    }
    pub(crate) use loom::hint;
    #[cfg(test)]
    pub(crate) use loom::{model, thread};
}

#[cfg(not(loom))]
mod inner {
    pub(crate) mod atomic {
        pub(crate) use core::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
    pub(crate) use core::hint;

    pub(crate) mod cell {
        /// `core::cell::UnsafeCell` with loom's closure-based access API, so
        /// that the same code compiles against both.
        #[derive(Debug)]
        pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

        impl<T> UnsafeCell<T> {
            pub(crate) const fn new(data: T) -> Self {
                Self(core::cell::UnsafeCell::new(data))
            }

            #[inline(always)]
            pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
                f(self.0.get())
            }

            #[inline(always)]
            pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
                f(self.0.get())
            }
        }
    }
}

pub(crate) use inner::*;
