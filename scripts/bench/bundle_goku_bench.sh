#!/usr/bin/env bash
# Packs `goku-bench` (the engine benchmarks, no media libraries) with the shared libraries it needs that a plain
# Linux host may lack (the Swift runtime, OpenBLAS, oneDNN), the bf16 tile check (scripts/bench/check_bf16_tiles.c),
# and a script that runs the block / attention / matmul suite beside PyTorch, so that the figures can be taken on a host without the Swift toolchain (e.g. one with AMX).
#
# Usage (from the repository root, after scripts/setup.sh):
#   scripts/bench/bundle_goku_bench.sh [OUT.tar.xz]          default out/goku-bench.tar.xz
# On the host (x86-64 with AVX-512, glibc ≥ the build machine's, python3 with torch for the comparison):
#   tar -xJf goku-bench.tar.xz && goku-bench/run.sh [OUT_LOG]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-out/goku-bench.tar.xz}
swift build -c release --product goku-bench
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/goku-bench/lib" "$stage/goku-bench/scripts/bench"
cp .build/release/goku-bench "$stage/goku-bench/"
cp scripts/bench/torch_block.py "$stage/goku-bench/scripts/bench/"
gcc -O2 -I Sources/CKernels/include scripts/bench/check_bf16_tiles.c Sources/CKernels/bf16_product.c -lm \
    -o "$stage/goku-bench/check_bf16_tiles"
# Every resolved library except the C runtime's own (glibc, libstdc++, libgcc_s), which the host provides.
ldd .build/release/goku-bench | awk '$3 ~ /^\// {print $3}' \
    | grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s)\.so' \
    | xargs -I{} cp -L {} "$stage/goku-bench/lib/"
cat >"$stage/goku-bench/run.sh" <<'RUN'
#!/usr/bin/env bash
# The engine suite on 2 threads pinned to 2 cores, each case beside PyTorch in the same run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=${1:-goku-bench.log}
export LD_LIBRARY_PATH="$here/lib" GOMP_SPINCOUNT=10000 PYTHONUNBUFFERED=1
export GOKU_TORCH_PYTHON=${GOKU_TORCH_PYTHON:-$(command -v python3)}
# A masked CPU model can make OpenBLAS pick pre-AVX-512 kernels (goku-bench warns); AVX-512 hosts want these.
grep -qw avx512f /proc/cpuinfo && export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
cd "$here"
{
    grep -m1 "model name" /proc/cpuinfo
    taskset -c 0,1 ./goku-bench block --dtype bf16 --threads 2 --compare-torch
    taskset -c 0,1 ./goku-bench block --dtype fp32 --threads 2 --compare-torch
    taskset -c 0,1 ./goku-bench ops --only matmul --threads 2
    # The attention tiles on AMX (opt-in until checked on such a machine): checked, then timed in the block.
    if taskset -c 0 ./check_bf16_tiles && grep -qw amx_bf16 /proc/cpuinfo; then
        GOKU_ATTENTION_AMX=1 taskset -c 0,1 ./goku-bench block --dtype bf16 --threads 2 --compare-torch
    fi
} 2>&1 | tee "$log"
RUN
chmod +x "$stage/goku-bench/run.sh"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out.tmp" goku-bench
mv "$out.tmp" "$out"
echo "wrote $out ($(du -h "$out" | cut -f1))"
