//! `rust_eh_personality`: reads a frame's LSDA (the `.gcc_except_table` entry the
//! compiler emits for functions with landing pads) and tells the unwinder which
//! landing pad cleans up the frame. Adapted from the `unwinding` crate's
//! `personality` module (MIT OR Apache-2.0), whose own version needs nightly.
//!
//! The kernel only ever forces an unwind (see [`super::catch`]), so the search
//! phase is answered for completeness only.

use gimli::{EndianSlice, NativeEndian, Pointer, Reader, constants};
use unwinding::abi::{
    _Unwind_GetDataRelBase, _Unwind_GetIPInfo, _Unwind_GetLanguageSpecificData, _Unwind_GetRegionStart,
    _Unwind_GetTextRelBase, _Unwind_SetGR, _Unwind_SetIP, UnwindAction, UnwindContext, UnwindException,
    UnwindReasonCode,
};

type StaticSlice = EndianSlice<'static, NativeEndian>;

/// DWARF numbers of the registers a landing pad receives the exception in (rax, rdx).
const DATA_REGISTERS: (i32, i32) = (0, 1);

/// What a call site asks for when an unwind passes through it.
enum Action {
    /// Nothing to clean up.
    None,
    /// Run the landing pad (destructors), which resumes the unwind.
    Cleanup(usize),
    /// A handler: run it (only Rust's `catch_unwind`, which the kernel does not use).
    Catch(usize),
    /// A frame that must not be unwound (a `nounwind` boundary); a forced unwind
    /// passes it, as glibc's does.
    Filter(usize),
    /// No call-site entry: unwinding through here is not allowed.
    Terminate,
}

/// The whole address space from `start` on, for readers that stop by themselves.
///
/// # Safety
/// `start` points at readable, well-formed unwind data.
unsafe fn unlimited_slice(start: usize) -> StaticSlice {
    // Up to the end of the address space (the kernel lives at its top).
    let len = (usize::MAX - start).min(isize::MAX as usize);
    // SAFETY: the caller guarantees the data is there; gimli reads only as far as
    // the encoded table goes.
    EndianSlice::new(
        unsafe { core::slice::from_raw_parts(start as *const u8, len) },
        NativeEndian,
    )
}

/// # Safety
/// An indirect pointer must point at a readable `usize`.
unsafe fn deref(ptr: Pointer) -> usize {
    match ptr {
        Pointer::Direct(x) => x as usize,
        // SAFETY: the caller's contract.
        Pointer::Indirect(x) => unsafe { *(x as *const usize) },
    }
}

fn pointer_encoding(input: &mut StaticSlice) -> gimli::Result<constants::DwEhPe> {
    let eh_pe = constants::DwEhPe(input.read_u8()?);
    if eh_pe.is_valid_encoding() {
        Ok(eh_pe)
    } else {
        Err(gimli::Error::UnknownPointerEncoding(eh_pe))
    }
}

fn encoded_pointer(
    encoding: constants::DwEhPe,
    ctx: &UnwindContext<'_>,
    input: &mut StaticSlice,
) -> gimli::Result<Pointer> {
    if encoding == constants::DW_EH_PE_omit {
        return Err(gimli::Error::CannotParseOmitPointerEncoding);
    }
    let base = match encoding.application() {
        constants::DW_EH_PE_absptr => 0,
        constants::DW_EH_PE_pcrel => input.slice().as_ptr() as u64,
        constants::DW_EH_PE_textrel => _Unwind_GetTextRelBase(ctx) as u64,
        constants::DW_EH_PE_datarel => _Unwind_GetDataRelBase(ctx) as u64,
        constants::DW_EH_PE_funcrel => _Unwind_GetRegionStart(ctx) as u64,
        constants::DW_EH_PE_aligned => {
            let ptr = input.slice().as_ptr() as usize;
            input.skip(ptr.next_multiple_of(size_of::<usize>()) - ptr)?;
            0
        }
        _ => return Err(gimli::Error::UnknownPointerEncoding(encoding)),
    };
    let offset = match encoding.format() {
        constants::DW_EH_PE_absptr => input.read_address(size_of::<usize>() as u8),
        constants::DW_EH_PE_uleb128 => input.read_uleb128(),
        constants::DW_EH_PE_udata2 => input.read_u16().map(u64::from),
        constants::DW_EH_PE_udata4 => input.read_u32().map(u64::from),
        constants::DW_EH_PE_udata8 => input.read_u64(),
        constants::DW_EH_PE_sleb128 => input.read_sleb128().map(|a| a as u64),
        constants::DW_EH_PE_sdata2 => input.read_i16().map(|a| a as u64),
        constants::DW_EH_PE_sdata4 => input.read_i32().map(|a| a as u64),
        constants::DW_EH_PE_sdata8 => input.read_i64().map(|a| a as u64),
        _ => return Err(gimli::Error::UnknownPointerEncoding(encoding)),
    }?;
    let address = base.wrapping_add(offset);
    Ok(if encoding.is_indirect() {
        Pointer::Indirect(address)
    } else {
        Pointer::Direct(address)
    })
}

/// Finds the call-site entry covering the frame's IP in the LSDA `lsda`.
fn find_action(lsda: &mut StaticSlice, ctx: &UnwindContext<'_>) -> gimli::Result<Action> {
    let func_start = _Unwind_GetRegionStart(ctx);
    let mut ip_before_instr = 0;
    let ip = _Unwind_GetIPInfo(ctx, &mut ip_before_instr);
    let ip = if ip_before_instr != 0 { ip } else { ip - 1 };

    let start_encoding = pointer_encoding(lsda)?;
    let lpad_base = if start_encoding.is_absent() {
        func_start
    } else {
        // SAFETY: the LSDA's pointers point into the kernel image.
        unsafe { deref(encoded_pointer(start_encoding, ctx, lsda)?) }
    };
    let ttype_encoding = pointer_encoding(lsda)?;
    if !ttype_encoding.is_absent() {
        lsda.read_uleb128()?;
    }
    let call_site_encoding = pointer_encoding(lsda)?;
    let call_site_table_length = lsda.read_uleb128()?;
    let (mut call_sites, mut actions) = lsda.split_at(call_site_table_length as usize);

    while !call_sites.is_empty() {
        // SAFETY: call-site fields are direct offsets within the function.
        let cs_start = unsafe { deref(encoded_pointer(call_site_encoding, ctx, &mut call_sites)?) };
        // SAFETY: as above.
        let cs_len = unsafe { deref(encoded_pointer(call_site_encoding, ctx, &mut call_sites)?) };
        // SAFETY: as above.
        let cs_lpad = unsafe { deref(encoded_pointer(call_site_encoding, ctx, &mut call_sites)?) };
        let cs_action = call_sites.read_uleb128()?;
        if ip < func_start + cs_start {
            break;
        }
        if ip < func_start + cs_start + cs_len {
            if cs_lpad == 0 {
                return Ok(Action::None);
            }
            let lpad = lpad_base + cs_lpad;
            if cs_action == 0 {
                return Ok(Action::Cleanup(lpad));
            }
            actions.skip((cs_action - 1) as usize)?;
            let ttype_index = actions.read_sleb128()?;
            let next_action = actions.read_sleb128()?;
            return Ok(if next_action != 0 {
                Action::Catch(lpad)
            } else if ttype_index == 0 {
                Action::Cleanup(lpad)
            } else if ttype_index > 0 {
                Action::Catch(lpad)
            } else {
                Action::Filter(lpad)
            });
        }
    }
    Ok(Action::Terminate)
}

/// The personality routine every Rust frame with landing pads names in its CIE.
///
/// # Safety
/// Called by the unwinder only, with a live exception and context.
#[unsafe(no_mangle)]
unsafe extern "C" fn rust_eh_personality(
    version: i32,
    actions: UnwindAction,
    _exception_class: u64,
    exception: *mut UnwindException,
    ctx: &mut UnwindContext<'_>,
) -> UnwindReasonCode {
    if version != 1 {
        return UnwindReasonCode::FATAL_PHASE1_ERROR;
    }
    let lsda = _Unwind_GetLanguageSpecificData(ctx);
    if lsda.is_null() {
        return UnwindReasonCode::CONTINUE_UNWIND;
    }
    // SAFETY: the unwinder found this LSDA in the kernel's `.gcc_except_table`.
    let mut lsda = unsafe { unlimited_slice(lsda as usize) };
    let Ok(action) = find_action(&mut lsda, ctx) else {
        return UnwindReasonCode::FATAL_PHASE1_ERROR;
    };
    if actions.contains(UnwindAction::SEARCH_PHASE) {
        return match action {
            Action::None | Action::Cleanup(_) => UnwindReasonCode::CONTINUE_UNWIND,
            Action::Catch(_) | Action::Filter(_) => UnwindReasonCode::HANDLER_FOUND,
            Action::Terminate => UnwindReasonCode::FATAL_PHASE1_ERROR,
        };
    }
    match action {
        Action::None => UnwindReasonCode::CONTINUE_UNWIND,
        Action::Filter(_) if actions.contains(UnwindAction::FORCE_UNWIND) => UnwindReasonCode::CONTINUE_UNWIND,
        Action::Cleanup(lpad) | Action::Catch(lpad) | Action::Filter(lpad) => {
            _Unwind_SetGR(ctx, DATA_REGISTERS.0, exception as usize);
            _Unwind_SetGR(ctx, DATA_REGISTERS.1, 0);
            _Unwind_SetIP(ctx, lpad);
            UnwindReasonCode::INSTALL_CONTEXT
        }
        Action::Terminate => UnwindReasonCode::FATAL_PHASE2_ERROR,
    }
}
