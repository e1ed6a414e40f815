#!/usr/bin/env bash
# Release build of every Lambda function with the size-tuned profile, and a size check
# (target: each binary under 10 MB). For deployment, `sam build` uses cargo-lambda to build the
# same crates for arm64 (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
functions=$(ls functions)
args=()
for f in $functions; do args+=(-p "$f"); done
cargo build --release "${args[@]}"
limit=$((10 * 1024 * 1024))
status=0
for f in $functions; do
  size=$(stat -c %s "target/release/$f")
  awk -v f="$f" -v s="$size" 'BEGIN { printf "%-22s %8.2f MB\n", f, s / 1048576 }'
  if [ "$size" -ge "$limit" ]; then echo "  over the 10 MB budget"; status=1; fi
done
exit $status
