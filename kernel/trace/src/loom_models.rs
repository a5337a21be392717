//! Loom models of the SPSC frame ring: a producer CPU and the drain racing.

use loom::{sync::Arc, thread};

use crate::FrameRing;

#[test]
fn frames_arrive_whole_and_in_order_while_the_ring_wraps() {
    loom::model(|| {
        // 32 bytes: two 4-byte frames (12 bytes each with headers) fit, a third waits.
        let ring = Arc::new(FrameRing::new(32));
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut sent = 0u8;
                while sent < 3 {
                    if ring.push(u32::from(sent), &[sent; 4]) {
                        sent += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut scratch = [0u8; 32];
        let mut next = 0u8;
        while next < 3 {
            let got = ring.pop(&mut scratch, |events, frame| {
                assert_eq!(events, u32::from(next));
                assert_eq!(frame, [next; 4]);
                true
            });
            if got {
                next += 1;
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(ring.is_empty());
    });
}

#[test]
fn a_refused_frame_stays_until_taken() {
    loom::model(|| {
        let ring = Arc::new(FrameRing::new(16));
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                assert!(ring.push(7, &[7; 8]));
            })
        };
        let mut scratch = [0u8; 16];
        // The drain first refuses the frame (its output is full), then takes it.
        loop {
            let mut seen = false;
            let _ = ring.pop(&mut scratch, |_, _| {
                seen = true;
                false
            });
            if seen {
                break;
            }
            thread::yield_now();
        }
        assert!(ring.pop(&mut scratch, |events, frame| events == 7 && frame == [7; 8]));
        producer.join().unwrap();
    });
}
