;; spinner: after four seconds of sleep, a loop that never returns and never calls
;; the kernel. Fuel slices still take its CPU away every slice; its fuel budget ends
;; it. (The sleep lets a console that connects a few seconds after boot see it run.)
(module
  (import "lucid" "sleep" (func $sleep (param i64)))
  (func (export "main")
    (call $sleep (i64.const 4000000000))
    (loop $forever (br $forever))))
