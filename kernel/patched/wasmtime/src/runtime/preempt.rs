//! Lucid patch: suspending a fiber's wasm from the point where an interrupt
//! stopped it, so a kernel can preempt guests by a timer instead of compiling fuel
//! or epoch checks into every loop.
//!
//! The kernel's timer interrupt, finding guest code interrupted, makes the return
//! from the interrupt enter a trampoline of its own that saves every register and
//! calls [`PreemptHandle::yield_now`] on the fiber's stack. That suspends the fiber
//! exactly as an async host function awaiting `yield_now` would (the call's future
//! returns `Pending` and wakes itself), and returns once the fiber is resumed; the
//! trampoline then restores the registers and the guest continues where it was.

use crate::prelude::*;
use crate::runtime::vm::{self, VMStore};
use crate::store::StoreInner;
use core::ptr::NonNull;

/// A store's address, for suspending the wasm it is running from an interrupt.
///
/// It stays valid as long as the [`crate::Store`] it came from exists (a store's
/// state is boxed and never moves).
#[derive(Clone, Copy)]
pub struct PreemptHandle(NonNull<dyn VMStore>);

// SAFETY: the handle is an address; every use is `unsafe` and states where it may
// be used (on the fiber that runs the store's wasm).
unsafe impl Send for PreemptHandle {}
// SAFETY: as for `Send`.
unsafe impl Sync for PreemptHandle {}

impl core::fmt::Debug for PreemptHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("PreemptHandle").field(&self.0.as_ptr().cast::<u8>()).finish()
    }
}

impl<T: 'static> crate::Store<T> {
    /// The handle through which the wasm this store runs on an async fiber can be
    /// suspended from an interrupt ([`PreemptHandle::yield_now`]).
    pub fn preempt_handle(&mut self) -> PreemptHandle {
        let inner: &mut StoreInner<T> = &mut self.inner;
        let store: &mut dyn VMStore = inner;
        PreemptHandle(NonNull::from(store))
    }
}

impl PreemptHandle {
    /// Suspends the fiber running this store's wasm until its future is polled
    /// again (having woken its task), then returns. If the future is dropped
    /// meanwhile, the wasm call is unwound with the cancellation as its error
    /// instead, and this does not return.
    ///
    /// `trampoline_fp` is the frame pointer of the caller's frame, which holds
    /// the interrupted wasm frame's frame pointer with `pc`, the interrupted
    /// instruction, as its return address: what a wasm-to-host trampoline
    /// records, so that a backtrace taken meanwhile (of the cancellation's trap)
    /// walks the guest's frames.
    ///
    /// # Safety
    ///
    /// Only on the fiber of an async call into this store's wasm, with that wasm
    /// (not host code) interrupted directly below this call on the fiber's stack
    /// as `trampoline_fp` and `pc` describe, and with every register the
    /// interrupted code may use saved by the caller. Nothing with a destructor may
    /// be live in the caller's frames.
    pub unsafe fn yield_now(self, trampoline_fp: usize, pc: usize) {
        // SAFETY: the caller is on the fiber running this store's wasm, which
        // holds the store exclusively and is stopped at the interrupt; libcalls
        // reach the store the same way (through the instance's store pointer).
        let store: &mut dyn VMStore = unsafe { &mut *self.0.as_ptr() };
        let opaque = store.store_opaque_mut();
        if !opaque.can_block() {
            return;
        }
        let context = opaque.vm_store_context();
        // SAFETY: the store's context is only touched by the thread running its
        // wasm, which is this one.
        unsafe {
            *context.last_wasm_exit_trampoline_fp.get() = trampoline_fp;
            *context.last_wasm_exit_pc.get() = pc;
        }
        let result = opaque.with_blocking(|store, cx| cx.block_on(store.yield_now()));
        if let Err(error) = result {
            let _: bool = vm::catch_unwind_and_record_trap(store, |_| Err::<(), _>(error));
            // SAFETY: wasm is on the stack below (the caller's contract), and the
            // frames between it and here hold nothing with a destructor.
            unsafe { vm::raise_preexisting_trap(store) };
        }
    }
}
