;; Test guest, hostile: spawns `t_spawn_child` (which spawns more of itself) until
;; refused and returns the refusal (-3 = its tree or the kernel is at its
;; instance limit).
(module
  (import "lucid" "spawn" (func $spawn (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "t_spawn_child")
  (func (export "main") (result i32)
    (local $r i64)
    (loop $again
      (local.set $r (call $spawn (i32.const 0) (i32.const 13)))
      (br_if $again (i64.ge_s (local.get $r) (i64.const 0))))
    (i32.wrap_i64 (local.get $r))))
