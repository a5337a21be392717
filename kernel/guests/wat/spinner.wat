;; spinner: a loop that never returns and never calls the kernel. Fuel slices still
;; take its CPU away every slice; its fuel budget ends it.
(module
  (func (export "main")
    (loop $forever (br $forever))))
