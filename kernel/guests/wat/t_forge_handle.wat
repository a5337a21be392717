;; Test guest, hostile: creates a channel (handle 0) and receives on the next
;; handle number, which it was never given.
(module
  (import "lucid" "chan_create" (func $chan_create (result i32)))
  (import "lucid" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "main")
    (drop (call $chan_recv (i32.add (call $chan_create) (i32.const 1)) (i32.const 0) (i32.const 16)))))
