;; Test and bench guest: `calls(n)` makes n `now` hostcalls and returns the last
;; value; `main` makes 1000 and checks time moves forward.
(module
  (import "lucid" "now" (func $now (result i64)))
  (func $calls (export "calls") (param $n i32) (result i64)
    (local $t i64)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $t (call $now))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $t))
  (func (export "main")
    (local $t0 i64)
    (local.set $t0 (call $now))
    (if (i64.le_u (call $calls (i32.const 1000)) (local.get $t0)) (then unreachable))))
