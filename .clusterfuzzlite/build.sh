#!/bin/bash -eu
# OSS-Fuzz-compatible build script (also ClusterFuzzLite's): builds every
# cargo-fuzz target of fuzz/ with the sanitizer and flags the builder sets
# ($SANITIZER, $RUSTFLAGS via cargo fuzz), and puts each binary in $OUT
# with its seed corpus (fuzz/corpus/<target>) and the dictionary.
set -euo pipefail  # also when run as `bash build.sh`
cd "$SRC/jool-stats-harness"

# Release with debug assertions, as scripts/fuzz builds for fuzzing, and
# through the same wrapper (the oracles' own parsers get no coverage).
export RUSTC_WRAPPER="$PWD/scripts/fuzz-rustc"
cargo fuzz build -O --debug-assertions
# The targets scripts/fuzz builds without compare tracing (NO_CMP_TARGETS
# there), in a folder of their own.
no_cmp=$(sed -n 's/^NO_CMP_TARGETS="\(.*\)"$/\1/p' scripts/fuzz)
for target in $no_cmp; do
    cargo fuzz build -O --debug-assertions --no-trace-compares \
        --target-dir fuzz/target/nocmp "$target"
done

for target in $(cargo fuzz list); do
    release=fuzz/target/x86_64-unknown-linux-gnu/release
    case " $no_cmp " in
        *" $target "*) release=fuzz/target/nocmp/x86_64-unknown-linux-gnu/release ;;
    esac
    cp "$release/$target" "$OUT/"
    if [ -d "fuzz/corpus/$target" ]; then
        (cd "fuzz/corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    fi
    cp fuzz/dict/jool.dict "$OUT/$target.dict"
    # libFuzzer options: as scripts/fuzz (per-input time, memory limits).
    printf '[libfuzzer]\ndict = %s.dict\ntimeout = 10\nrss_limit_mb = 1024\nmalloc_limit_mb = 512\n' \
        "$target" >"$OUT/$target.options"
done
