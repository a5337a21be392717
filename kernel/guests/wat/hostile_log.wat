;; Hostile guest: logs 1 KiB lines in an endless loop. Past its log rate the
;; kernel drops its lines, and after MAX_REFUSALS dropped lines kills it:
;; killed(log).
(module
  (import "lucid" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "flood flood flood flood flood flood flood flood ")
  (func (export "main")
    (loop $flood
      (call $log (i32.const 0) (i32.const 1024) (i32.const 2))
      (br $flood))))
