;; Test guest: grows its memory by a page, writes the new page's last byte (which
;; must work), then the byte after it (which must trap, in `$past_growth`).
(module
  (memory (export "memory") 1)
  (func $in_growth (i32.store8 (i32.const 131071) (i32.const 1)))
  (func $past_growth (i32.store8 (i32.const 131072) (i32.const 1)))
  (func (export "main")
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const 1)) (then unreachable))
    (call $in_growth)
    (call $past_growth)))
