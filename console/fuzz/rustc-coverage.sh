#!/bin/sh
# RUSTC_WRAPPER of the fuzz build (`cargo xtask fuzz`): libFuzzer's coverage
# instrumentation goes into Lucid's own crates only. Instrumenting the libraries
# too (ratatui's cell-by-cell drawing above all) made every input several times
# slower without guiding the fuzzer through any code of ours.
# LUCID_FUZZ_COMPARES=0 leaves out compare tracing (`cargo xtask fuzz --no-compares`).
rustc="$1"
shift
compares=-Cllvm-args=-sanitizer-coverage-trace-compares
[ "${LUCID_FUZZ_COMPARES:-1}" = 0 ] && compares=
case " $* " in
*" --crate-name lucid_"*)
    exec "$rustc" "$@" \
        -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        $compares
    ;;
*)
    exec "$rustc" "$@"
    ;;
esac
