#!/usr/bin/env bash
# A tier move to an S3-compatible store and back: one pile of trades,
# compacted in hot, then every day but the newest moved to an `archive`
# tier on a local s3s-fs server (zstd 12, multipart parts of 8 MiB), then
# exported back from the store. Reports upload throughput (MB read from
# local files and MB sent, per second of the move, which includes the
# read-back verification), read-back throughput (MB of objects fetched per
# second of the export), and the peak RSS of each (/usr/bin/time -v)
# against compaction.memory_limit. Release build.
#
# Usage: benches/tier_store.sh [WORKDIR]   (default /tmp/mdkeep-store-bench)
#   PILE="--symbols 4 --days 8 --flushes-per-hour 4 --rows-per-flush 5000"  (mdkeep gen options)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-store-bench}
pile_opts=${PILE:---symbols 4 --days 8 --flushes-per-hour 4 --rows-per-flush 5000}
s3s=${S3S_FS:-${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs}
[ -x "$s3s" ] || { echo "needs s3s-fs: cargo install s3s-fs --version 0.14.1 --features binary --locked"; exit 1; }
. "$here/benches/timed.sh"
(cd "$here" && cargo build --release -q)
mdkeep="$here/target/release/mdkeep"

root="$work/root"
rm -rf "$work"; mkdir -p "$root" "$work/s3/market-cold"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" > "$work/s3s.log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
export MDKEEP__TIERS__ARCHIVE__ROOT=s3://market-cold/processed MDKEEP__TIERS__ARCHIVE__ZSTD_LEVEL=12
export MDKEEP__TIERS__ARCHIVE__TARGET_FILE_SIZE=256MiB MDKEEP__TIERS__ARCHIVE__S3__ENDPOINT="http://127.0.0.1:$port"
export MDKEEP__TIERS__ARCHIVE__S3__PATH_STYLE=true MDKEEP__TIERS__ARCHIVE__S3__ALLOW_HTTP=true
export MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM=6h MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD=9h
export MDKEEP__DATASETS__TRADES__TIER_AFTER__ARCHIVE=12h
"$mdkeep" init > /dev/null
echo "==> mdkeep gen $pile_opts --start 2024-01-01"
"$mdkeep" gen $pile_opts --start 2024-01-01 > /dev/null
"$mdkeep" scan > /dev/null
"$mdkeep" compact > /dev/null
limit=$(awk -F'"' '/^memory_limit/ {print $2}' "$here/configs/mdkeep.toml")

# The same move to a local folder at the same zstd level: what the store adds.
cp -a "$root" "$work/root-local"
local_mdkeep=(env -u MDKEEP__TIERS__ARCHIVE__S3__ENDPOINT -u MDKEEP__TIERS__ARCHIVE__S3__PATH_STYLE
  -u MDKEEP__TIERS__ARCHIVE__S3__ALLOW_HTTP MDKEEP_ROOT="$work/root-local"
  MDKEEP__TIERS__ARCHIVE__ROOT="$work/local-archive" "$mdkeep")
echo "==> hot → archive on a local folder (the yardstick)"
read -r loc_wall loc_rss < <(timed "$work/local.json" "${local_mdkeep[@]}" tier --json)
loc_secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$work/local.json")

echo "==> hot → archive (s3://market-cold/processed on s3s-fs)"
read -r up_wall up_rss < <(timed "$work/up.json" "$mdkeep" tier --json)
read -r moves bin bout rows secs < <(python3 -c '
import json,sys; m=json.load(open(sys.argv[1]))
print(m["moves"], m["bytes_in"], m["bytes_out"], m["rows_out"], m["seconds"])' "$work/up.json")
echo "==> export the moved days back from the store (parquet)"
last=$(ls "$root/data/processed/trades/"*/*/ | grep -o 'date=[0-9-]*' | sort | tail -1 | cut -d= -f2)
read -r dn_wall dn_rss < <(timed "$work/down.json" "$mdkeep" export --dataset trades --to "$last" --format parquet --out "$work/export" --json)
read -r ldn_wall ldn_rss < <(timed "$work/down-local.json" "${local_mdkeep[@]}" export --dataset trades \
  --to "$last" --format parquet --out "$work/export-local" --json)
objs=$(find "$work/s3/market-cold" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s+0}')

echo
echo "$moves partitions, $rows rows: $(( bin / 1048576 )) MiB local (zstd 3) → $(( bout / 1048576 )) MiB on the store (zstd 12)"
printf "%-22s %8s %12s %12s %14s\n" step "wall(s)" "MB/s local" "MB/s store" "peak RSS(MB)"
awk -v w="$secs" -v a="$bin" -v b="$bout" -v r="$up_rss" 'BEGIN { printf "%-22s %8.2f %12.1f %12.1f %14.0f\n", "upload (move+verify)", w, a/1e6/w, b/1e6/w, r/1024 }'
awk -v w="$loc_secs" -v a="$bin" -v r="$loc_rss" 'BEGIN { printf "%-22s %8.2f %12.1f %12s %14.0f\n", "same move, local disk", w, a/1e6/w, "-", r/1024 }'
awk -v w="$dn_wall" -v b="$objs" -v r="$dn_rss" 'BEGIN { printf "%-22s %8.2f %12s %12.1f %14.0f\n", "read back (export)", w, "-", b/1e6/w, r/1024 }'
awk -v w="$ldn_wall" -v b="$objs" -v r="$ldn_rss" 'BEGIN { printf "%-22s %8.2f %12.1f %12s %14.0f\n", "same export, local", w, b/1e6/w, "-", r/1024 }'
cmp -s <(cd "$work/export" && find . -type f -exec md5sum {} + | sort) <(cd "$work/export-local" && find . -type f -exec md5sum {} + | sort) \
  && echo "exports from the store and from local disk are byte-for-byte equal" \
  || { echo "exports differ"; exit 1; }
echo "compaction.memory_limit: $limit"
