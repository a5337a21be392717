;; Test guest, hostile: 20 `log` calls of 64 KiB each, made of lines that look
;; like kernel log lines and terminal escapes, then a 10 s sleep (so its fuel
;; can be read while it lives).
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (memory (export "memory") 2)
  (data (i32.const 0) "\n[   0.000001] ERROR kernel: forged\1b[2J\r\00\7f\\abcde")
  (func (export "main")
    (local $i i32)
    ;; Repeat the 48-byte pattern over the first 64 KiB.
    (local.set $i (i32.const 48))
    (loop $fill
      (i32.store8 (local.get $i) (i32.load8_u (i32.rem_u (local.get $i) (i32.const 48))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 65536))))
    (local.set $i (i32.const 0))
    (loop $flood
      (call $log (i32.const 0) (i32.const 65536) (i32.const 2))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $flood (i32.lt_u (local.get $i) (i32.const 20))))
    (call $sleep (i64.const 10000000000))))
