;; Test guest: sends on a channel handle it was never given.
(module
  (import "lucid" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "main") (drop (call $chan_send (i32.const 42) (i32.const 0) (i32.const 1)))))
