//! A Rust guest using the `lucid` imports through the safe wrapper: creates two
//! channels, starts `rust_pong` (which inherits both), and sends it 1000 numbers,
//! expecting each back doubled. Prints its progress on stdout (WASI).
fn main() {
    let to = lucid::Channel::create().expect("channel");
    let from = lucid::Channel::create().expect("channel");
    let pong = lucid::spawn("rust_pong").expect("spawn rust_pong");
    println!("rust_ping: started rust_pong as instance {}", pong);
    let start = lucid::now();
    let mut buf = [0u8; 8];
    for n in 0..1000u64 {
        to.send(&n.to_le_bytes()).expect("send");
        assert_eq!(from.recv(&mut buf), Ok(8));
        assert_eq!(u64::from_le_bytes(buf), 2 * n, "pong answered wrong");
        if n % 250 == 0 {
            lucid::yield_now();
        }
    }
    let us = (lucid::now() - start) / 1000;
    println!("rust_ping: 1000 round trips in {} us", us);
    lucid::log(lucid::Level::Info, "rust_ping: done");
}
