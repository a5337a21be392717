;; Test guest: a float loop long enough for the timer to preempt it many times,
;; with several values live in SSE registers throughout. It returns the low 32
;; bits of the result's bit pattern, which the kernel test computes in Rust with
;; the same operations in the same order: a register the preemption path failed to
;; save would change it.
(module
  (func (export "main") (result i32)
    (local $i i32) (local $a f64) (local $b f64) (local $c f64) (local $d f64)
    (local.set $a (f64.const 1.0))
    (local.set $b (f64.const 0.5))
    (local.set $d (f64.const 3.0))
    (loop $l
      (local.set $c (f64.add (local.get $c) (f64.mul (local.get $a) (local.get $b))))
      (local.set $a (f64.add (local.get $a) (f64.const 1.0)))
      (local.set $b (f64.mul (local.get $b) (f64.const 0.999999)))
      (local.set $d (f64.sub (local.get $d) (f64.div (local.get $c) (local.get $a))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3000000))))
    (i32.wrap_i64 (i64.reinterpret_f64 (f64.add (local.get $c) (local.get $d))))))
