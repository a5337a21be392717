;; sleeper: wakes every 50 ms, logs every 20th tick.
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "sleeper: 20 ticks")
  (func (export "main")
    (local $n i32)
    (loop $tick
      (call $sleep (i64.const 50000000))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 20)))
        (then (call $log (i32.const 0) (i32.const 17) (i32.const 2))))
      (br $tick))))
