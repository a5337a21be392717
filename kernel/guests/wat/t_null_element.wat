;; Test guest: `call_indirect` on an undefined table element.
(module
  (type $nullary (func (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $f)
  (func $f (result i32) (i32.const 1))
  (func (export "main")
    (drop (call_indirect (type $nullary) (i32.const 1)))))
