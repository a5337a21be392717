;; Test guest, hostile: tries to pin kernel heap through channels and queued
;; messages. It creates channels until refused, gives a `t_holder` child copies
;; (so sends have a receiver that never reads), then queues 64 KiB messages
;; round-robin until a send fails, and returns that send's result
;; (-2 = its tree's kernel memory budget refused the copy).
(module
  (import "lucid" "chan_create" (func $chan_create (result i32)))
  (import "lucid" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 2)
  (data (i32.const 0) "t_holder")
  (func (export "main") (result i32)
    (local $n i32) (local $h i32) (local $r i32) (local $i i32)
    (block $full
      (loop $create
        (local.set $h (call $chan_create))
        (br_if $full (i32.lt_s (local.get $h) (i32.const 0)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $create)))
    (if (i32.eqz (local.get $n)) (then (return (i32.const -100))))
    (if (i64.lt_s (call $spawn (i32.const 0) (i32.const 8)) (i64.const 0))
      (then (return (i32.const -101))))
    (loop $send
      (local.set $r
        (call $chan_send (i32.rem_u (local.get $i) (local.get $n)) (i32.const 64) (i32.const 65536)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $send (i32.eqz (local.get $r))))
    (local.get $r)))
