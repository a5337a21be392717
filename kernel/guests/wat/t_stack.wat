;; Test guest: unbounded recursion; wasmtime's stack limit stops it far above the
;; fiber stack's guard page.
(module
  (func $down (param i64) (result i64)
    (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "main") (drop (call $down (i64.const 0)))))
