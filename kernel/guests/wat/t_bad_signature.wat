;; Test guest: `call_indirect` through a table element of another type.
(module
  (type $nullary (func (result i32)))
  (type $unary (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $f)
  (func $f (result i32) (i32.const 1))
  (func (export "main")
    (drop (call_indirect (type $unary) (i32.const 5) (i32.const 0)))))
