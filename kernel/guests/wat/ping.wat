;; ping: one half of the ping-pong pair. Creates two channels (handles 0 and 1),
;; starts `pong` (which receives copies of both handles), then sends a counter on
;; channel 0 and expects it back incremented on channel 1. A wrong answer traps.
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (import "lucid" "chan_create" (func $chan_create (result i32)))
  (import "lucid" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "lucid" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "pong")
  (data (i32.const 16) "ping: 10000 round trips")
  (func (export "main")
    (local $to i32) (local $from i32) (local $n i64)
    (local.set $to (call $chan_create))
    (local.set $from (call $chan_create))
    (if (i64.lt_s (call $spawn (i32.const 0) (i32.const 4)) (i64.const 0)) (then unreachable))
    (loop $round
      ;; message: the counter at 64
      (i64.store (i32.const 64) (local.get $n))
      (if (i32.ne (call $chan_send (local.get $to) (i32.const 64) (i32.const 8)) (i32.const 0))
        (then unreachable))
      (if (i32.ne (call $chan_recv (local.get $from) (i32.const 72) (i32.const 8)) (i32.const 8))
        (then unreachable))
      (if (i64.ne (i64.load (i32.const 72)) (i64.add (local.get $n) (i64.const 1)))
        (then unreachable))
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (if (i64.eqz (i64.rem_u (local.get $n) (i64.const 10000)))
        (then (call $log (i32.const 16) (i32.const 23) (i32.const 2))))
      ;; a pause every 50 round trips keeps the pair from owning a CPU
      (if (i64.eqz (i64.rem_u (local.get $n) (i64.const 50)))
        (then (call $sleep (i64.const 2000000))))
      (br $round))))
