;; Test guest: holds the handles it was given for 6 s without reading them.
(module
  (import "lucid" "sleep" (func $sleep (param i64)))
  (func (export "main") (call $sleep (i64.const 6000000000))))
