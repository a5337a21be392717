;; Test guest: holds the handles it was given for 3 s without reading them.
(module
  (import "lucid" "sleep" (func $sleep (param i64)))
  (func (export "main") (call $sleep (i64.const 3000000000))))
