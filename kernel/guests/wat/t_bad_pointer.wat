;; Test guest: hands `log` a buffer that ends past its memory.
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "main") (call $log (i32.const 65000) (i32.const 1000) (i32.const 2))))
