;; Test guest: executes `unreachable`.
(module (func (export "main") unreachable))
