//! ACPI tables (crate `acpi` 5.2, which builds on stable; its `PlatformInfo` does
//! not, so the MADT is walked here): CPUs, I/O APICs and the HPET.

use core::ptr::NonNull;

use acpi::{
    AcpiHandler, AcpiTables, HpetInfo, PhysicalMapping,
    madt::{Madt, MadtEntry},
};

use crate::mem::phys_to_virt;

/// Maps ACPI tables through the direct map (no mapping work needed).
#[derive(Clone, Copy, Debug)]
pub struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = phys_to_virt(physical_address as u64) as *mut T;
        // SAFETY: the direct map covers all RAM and the firmware tables in it; the
        // acpi crate guarantees `physical_address` holds a `T`.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(virt).expect("direct map is not null"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What the kernel learned from ACPI.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// Usable CPUs (enabled or online-capable local APIC / x2APIC entries).
    pub cpu_count: usize,
    /// APIC ids of those CPUs (first 64).
    pub apic_ids: [u32; 64],
    /// Physical address of the local APIC.
    pub local_apic: u64,
    /// I/O APICs found.
    pub io_apics: usize,
    /// Physical address of the HPET, if there is one.
    pub hpet: Option<u64>,
    /// Number of tables in the RSDT/XSDT.
    pub table_count: usize,
}

/// Why ACPI could not be read.
#[derive(Debug)]
pub enum AcpiError {
    /// The loader reported no RSDP.
    NoRsdp,
    /// The tables did not parse.
    Parse(acpi::AcpiError),
    /// There is no MADT.
    NoMadt,
}

impl core::fmt::Display for AcpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRsdp => write!(f, "no ACPI RSDP from the loader"),
            Self::Parse(e) => write!(f, "ACPI tables do not parse: {e:?}"),
            Self::NoMadt => write!(f, "no MADT"),
        }
    }
}

impl core::error::Error for AcpiError {}

/// Parses the tables reachable from the RSDP at `rsdp_phys`.
pub fn discover(rsdp_phys: u64) -> Result<Platform, AcpiError> {
    if rsdp_phys == 0 {
        return Err(AcpiError::NoRsdp);
    }
    // SAFETY: the loader passes the RSDP address from hvm_start_info, reachable through
    // the direct map.
    let tables = unsafe { AcpiTables::from_rsdp(DirectMap, rsdp_phys as usize) }.map_err(AcpiError::Parse)?;
    let mut platform = Platform {
        cpu_count: 0,
        apic_ids: [0; 64],
        local_apic: 0,
        io_apics: 0,
        hpet: None,
        table_count: tables.headers().count(),
    };
    let madt = tables.find_table::<Madt>().map_err(|_| AcpiError::NoMadt)?;
    platform.local_apic = u64::from(madt.get().local_apic_address);
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let flags = e.flags;
                if flags & 0b11 != 0 {
                    push_cpu(&mut platform, u32::from(e.apic_id));
                }
            }
            MadtEntry::LocalX2Apic(e) => {
                let flags = e.flags;
                if flags & 0b11 != 0 {
                    push_cpu(&mut platform, e.x2apic_id);
                }
            }
            MadtEntry::IoApic(_) => platform.io_apics += 1,
            MadtEntry::LocalApicAddressOverride(e) => platform.local_apic = e.local_apic_address,
            _ => {}
        }
    }
    if let Ok(hpet) = HpetInfo::new(&tables) {
        platform.hpet = Some(hpet.base_address as u64);
    }
    Ok(platform)
}

fn push_cpu(p: &mut Platform, id: u32) {
    if p.cpu_count < p.apic_ids.len() {
        p.apic_ids[p.cpu_count] = id;
    }
    p.cpu_count += 1;
}
