;; Test guest: a store one byte past the end of its single page.
(module
  (memory (export "memory") 1)
  (func (export "main") (i32.store8 (i32.const 65536) (i32.const 1))))
