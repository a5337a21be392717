;; hasher: CPU-bound. FNV-1a over 64 KiB of its memory, round after round, forever;
;; it never calls the kernel between rounds, so only fuel slices take its CPU away.
;; `hash(rounds) -> i64` is also what `cargo xtask bench` compares with native code.
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "hasher: 100 rounds")
  (func $hash (export "hash") (param $rounds i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (i64.const 0xcbf29ce484222325))
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 65536))
        (loop $byte
          (local.set $h (i64.mul
            (i64.xor (local.get $h) (i64.load8_u (local.get $i)))
            (i64.const 0x100000001b3)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $i) (i32.const 131072))))
        ;; feed the result back so no round is like the last
        (i64.store (i32.const 65536) (local.get $h))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $h))
  (func (export "main")
    (loop $forever
      (drop (call $hash (i32.const 100)))
      (call $log (i32.const 0) (i32.const 18) (i32.const 1))
      (br $forever))))
