;; Hostile guest: pins kernel memory through channels and queued messages like
;; `t_pin`, and keeps sending after its tree's kernel memory budget refuses it
;; (ERR_NO_MEMORY ignored). The kernel kills it after MAX_REFUSALS refusals:
;; killed(memory).
(module
  (import "lucid" "chan_create" (func $chan_create (result i32)))
  (import "lucid" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 2)
  (data (i32.const 0) "t_holder")
  (func (export "main")
    (local $n i32) (local $h i32) (local $i i32)
    (block $full
      (loop $create
        (local.set $h (call $chan_create))
        (br_if $full (i32.lt_s (local.get $h) (i32.const 0)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $create)))
    ;; A holder that never reads keeps the queued messages alive.
    (drop (call $spawn (i32.const 0) (i32.const 8)))
    (loop $send
      (drop (call $chan_send (i32.rem_u (local.get $i) (local.get $n)) (i32.const 64) (i32.const 65536)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $send))))
