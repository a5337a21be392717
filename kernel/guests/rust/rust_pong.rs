//! The other half of `rust_ping`: receives numbers on the inherited channel 0 and
//! answers with each doubled on channel 1, until ping is gone.
fn main() {
    let from = lucid::Channel::inherited(0);
    let to = lucid::Channel::inherited(1);
    let mut buf = [0u8; 8];
    let mut answered = 0u64;
    while let Ok(8) = from.recv(&mut buf) {
        let n = u64::from_le_bytes(buf);
        if to.send(&(2 * n).to_le_bytes()).is_err() {
            break;
        }
        answered += 1;
    }
    println!("rust_pong: answered {}", answered);
}
