//! Test guest: a Rust panic two calls deep. std prints the message on stderr and
//! aborts (a wasm `unreachable`); the trap reason must name the Rust functions.
#[inline(never)]
fn explode(n: usize) -> usize {
    if n > 2 {
        panic!("t_rust_panic: exploding at {}", n);
    }
    n
}

#[inline(never)]
fn count_up() -> usize {
    // Counted from the argument count, so the compiler cannot fold the panic away.
    let start = std::env::args().count();
    (start..start + 10).map(explode).sum()
}

fn main() {
    println!("t_rust_panic: {}", count_up());
}
