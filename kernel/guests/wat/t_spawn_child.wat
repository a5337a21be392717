;; Test guest: part of a spawn storm; spawns more of itself until refused, then
;; holds its instance slot for 2 s.
(module
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (import "lucid" "sleep" (func $sleep (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "t_spawn_child")
  (func (export "main")
    (loop $again
      (br_if $again (i64.ge_s (call $spawn (i32.const 0) (i32.const 13)) (i64.const 0))))
    (call $sleep (i64.const 2000000000))))
