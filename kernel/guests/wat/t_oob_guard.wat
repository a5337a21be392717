;; Test guest: a load whose index and static offset add up to just past 4 GiB, so it
;; lands in the guard region after the memory's reservation (no bounds check is
;; compiled for it: the page fault is the check).
(module
  (memory (export "memory") 1)
  (func (export "main") (drop (i32.load offset=256 (i32.const -16)))))
