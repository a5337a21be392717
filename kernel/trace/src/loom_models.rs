//! Loom models of the SPSC record ring: a producer CPU and the drain racing.

use loom::{sync::Arc, thread};

use crate::{MAX_ENTRY_SLOTS, RecordRing, Slot};

/// An entry of `1 + extra` slots whose words all say `tag`.
fn entry(tag: u64, extra: usize) -> (Slot, [Slot; 2]) {
    (Slot([tag, (extra as u64) << 8, tag, tag]), [Slot([tag; 4]); 2])
}

#[test]
fn entries_arrive_whole_and_in_order_while_the_ring_wraps() {
    loom::model(|| {
        // 4 slots: entries of 1, 2 and 1 slots; the last waits for room after a wrap.
        let ring = Arc::new(RecordRing::new(4));
        let sizes = [0usize, 2, 1];
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut sent = 0;
                while sent < sizes.len() {
                    let (first, extra) = entry(sent as u64, sizes[sent]);
                    // SAFETY: this thread is the ring's only producer.
                    if unsafe { ring.push(first, &extra[..sizes[sent]]) } {
                        sent += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut buf = Box::new([Slot::default(); MAX_ENTRY_SLOTS]);
        let mut next = 0;
        while next < sizes.len() {
            // SAFETY: this thread is the ring's only consumer.
            let taken = unsafe {
                ring.drain(&mut buf, |got| {
                    assert_eq!(got.len(), 1 + sizes[next]);
                    assert!(got.iter().all(|s| s.0[0] == next as u64), "a torn entry: {got:?}");
                    next += 1;
                    true
                })
            };
            if taken == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(ring.is_empty());
    });
}

#[test]
fn a_full_ring_refuses_and_the_consumer_frees_it() {
    loom::model(|| {
        let ring = Arc::new(RecordRing::new(2));
        let (a, _) = entry(1, 0);
        // SAFETY: the producer is this thread until the consumer thread is spawned,
        // which only consumes.
        unsafe {
            assert!(ring.push(a, &[]));
            assert!(ring.push(a, &[]));
            assert!(!ring.push(a, &[]), "full");
        }
        let consumer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut buf = Box::new([Slot::default(); MAX_ENTRY_SLOTS]);
                // SAFETY: this thread is the ring's only consumer.
                unsafe { ring.drain(&mut buf, |_| true) }
            })
        };
        // SAFETY: this thread stays the only producer.
        let pushed = unsafe { ring.push(a, &[]) };
        let taken = consumer.join().unwrap();
        // Either the push saw the freed room, or it saw a full ring before the drain.
        assert!(pushed || taken == 2);
        assert_eq!(ring.used(), usize::from(pushed) + 2 - taken);
    });
}
