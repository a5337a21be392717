;; trapper: lives five seconds, then loads far outside its memory.
(module
  (import "lucid" "sleep" (func $sleep (param i64)))
  (memory (export "memory") 1)
  (func (export "main")
    (call $sleep (i64.const 5000000000))
    (drop (i32.load (i32.const 0x7ffffff0)))))
