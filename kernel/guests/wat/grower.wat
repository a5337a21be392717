;; grower: grows its memory one page every 200 ms, touching each new page, until
;; the kernel's limit refuses a growth; then it logs that and exits with the page
;; count as its code.
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (import "lucid" "exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "grower: growth refused at the limit")
  (func (export "main")
    (local $old i32)
    (loop $grow
      (call $sleep (i64.const 200000000))
      (local.set $old (memory.grow (i32.const 1)))
      (if (i32.lt_s (local.get $old) (i32.const 0))
        (then
          (call $log (i32.const 0) (i32.const 35) (i32.const 3))
          (call $exit (memory.size))))
      ;; write the last byte of the new page
      (i32.store8 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1)) (i32.const 1))
      (br $grow))))
