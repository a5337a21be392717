;; Test guest: exits with code 7 from inside a nested call.
(module
  (import "lucid" "exit" (func $exit (param i32)))
  (func $inner (call $exit (i32.const 7)) unreachable)
  (func (export "main") (call $inner)))
