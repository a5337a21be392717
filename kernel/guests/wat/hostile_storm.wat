;; Hostile guest: spawns `t_holder` (which sleeps 6 s) in an endless loop,
;; ignoring ERR_LIMIT once its tree is full. The kernel kills it after
;; MAX_REFUSALS refusals: killed(instances).
(module
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "t_holder")
  (func (export "main")
    (loop $again
      (drop (call $spawn (i32.const 0) (i32.const 8)))
      (br $again))))
