//! A Rust `std` guest: prints its arguments, counts the primes below 200 000
//! with a sieve of Eratosthenes over a buffer, sleeps between rounds, and exits
//! with the number of arguments it was given (so a run shows that its arguments
//! and its exit code both made it through).
use std::time::{Duration, Instant};

/// Primes below `limit`.
fn sieve(limit: usize) -> usize {
    let mut composite = vec![false; limit];
    let mut count = 0;
    for n in 2..limit {
        if composite[n] {
            continue;
        }
        count += 1;
        let mut m = n * n;
        while m < limit {
            composite[m] = true;
            m += n;
        }
    }
    count
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("rust_sieve: {} args {:?}", args.len(), args);
    const LIMIT: usize = 200_000;
    for round in 0..3 {
        let start = Instant::now();
        let primes = sieve(LIMIT);
        println!("round {}: {} primes below {} in {:?}", round, primes, LIMIT, start.elapsed());
        if primes != 17_984 {
            eprintln!("rust_sieve: wrong count {}", primes);
            std::process::exit(100);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("rust_sieve: exiting with {}", args.len());
    std::process::exit(args.len() as i32);
}
