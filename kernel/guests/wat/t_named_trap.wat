;; Test guest: `unreachable` two calls deep in named functions; the trap reason
;; must name them (from the module's name section).
(module
  (func $deep_crash unreachable)
  (func $calls_the_crash (call $deep_crash))
  (func (export "main") (call $calls_the_crash)))
