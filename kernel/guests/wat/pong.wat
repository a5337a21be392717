;; pong: the other half of the ping-pong pair. Started by `ping` with its handles:
;; receives a counter on channel 0 and answers with counter + 1 on channel 1, until
;; ping is gone.
(module
  (import "lucid" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "lucid" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "main")
    (loop $round
      (if (i32.ne (call $chan_recv (i32.const 0) (i32.const 0) (i32.const 8)) (i32.const 8))
        (then return))
      (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
      (if (i32.ne (call $chan_send (i32.const 1) (i32.const 0) (i32.const 8)) (i32.const 0))
        (then return))
      (br $round))))
