;; spawner: starts a short-lived `short` instance every 300 ms.
(module
  (import "lucid" "sleep" (func $sleep (param i64)))
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "short")
  (func (export "main")
    (loop $again
      (drop (call $spawn (i32.const 0) (i32.const 5)))
      (call $sleep (i64.const 300000000))
      (br $again))))
