use core::sync::atomic::Ordering;

use lucid_ktest_macros::ktest;

use crate::{
    arch::{
        apic::{self, Ipi},
        idt, percpu,
    },
    mem::paging,
    time::Instant,
};

const TEST_IPI_VECTOR: u8 = 0xf0;

#[ktest]
fn every_acpi_cpu_comes_online() {
    let online = percpu::online() as usize;
    assert_eq!(online as u64, crate::cpu_count(), "online CPUs vs ACPI MADT");
    let mut ids = [u32::MAX; percpu::MAX_CPUS];
    for (i, id) in ids.iter_mut().enumerate().take(online) {
        let cpu = percpu::cpu(i).unwrap_or_else(|| panic!("CPU {i} is not online"));
        assert_eq!(cpu.index as usize, i);
        *id = cpu.apic_id;
    }
    for i in 0..online {
        assert!(
            !ids[i + 1..online].contains(&ids[i]),
            "APIC id {} appears twice",
            ids[i]
        );
    }
    assert_eq!(percpu::current().index, 0, "tests run on the bootstrap CPU");
}

#[ktest]
fn every_cpu_has_its_own_guarded_ist_stacks() {
    let online = percpu::online() as usize;
    for i in 0..online {
        let cpu = percpu::cpu(i).unwrap();
        for (slot, stack) in cpu.ist.iter().enumerate() {
            assert!(
                paging::translate(stack.guard).is_none(),
                "CPU {i} IST {slot}: guard page mapped"
            );
            assert!(
                paging::translate(stack.top - 8).is_some(),
                "CPU {i} IST {slot}: stack not mapped"
            );
            for j in 0..i {
                let other = percpu::cpu(j).unwrap();
                assert!(!other.ist.contains(stack), "CPUs {i} and {j} share an IST stack");
            }
        }
    }
}

fn count_ipi(_frame: &mut idt::InterruptFrame) {
    percpu::current().ipis.fetch_add(1, Ordering::SeqCst);
    apic::eoi();
}

#[ktest]
fn ipis_reach_every_application_processor() {
    idt::set_handler(TEST_IPI_VECTOR, count_ipi);
    let online = percpu::online() as usize;
    assert!(online >= 2, "this test needs -smp 2 or more");
    for i in 1..online {
        let cpu = percpu::cpu(i).unwrap();
        let before = cpu.ipis.load(Ordering::SeqCst);
        let interrupts_before = cpu.interrupts.load(Ordering::SeqCst);
        apic::send_ipi(cpu.apic_id, Ipi::Fixed(TEST_IPI_VECTOR));
        let start = Instant::now();
        while cpu.ipis.load(Ordering::SeqCst) == before {
            assert!(
                start.elapsed().as_millis() < 2_000,
                "CPU {i} (APIC id {}) never took the IPI",
                cpu.apic_id
            );
            core::hint::spin_loop();
        }
        assert_eq!(cpu.ipis.load(Ordering::SeqCst), before + 1);
        assert!(cpu.interrupts.load(Ordering::SeqCst) > interrupts_before);
    }
    // The sender itself took none of them.
    assert_eq!(percpu::current().ipis.load(Ordering::SeqCst), 0);
}
