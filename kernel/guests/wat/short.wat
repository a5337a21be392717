;; short: a short-lived instance: a little work, a short sleep, exit code 3.
(module
  (import "lucid" "now" (func $now (result i64)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (import "lucid" "exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "main")
    (local $i i32)
    (loop $work
      (i64.store (i32.const 0) (call $now))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $work (i32.lt_u (local.get $i) (i32.const 100))))
    (call $sleep (i64.const 20000000))
    (call $exit (i32.const 3))))
