#!/usr/bin/env bash
# Records the real-runtime leak corpus (issue 17): every app of tests/apps/runtimes
# runs in parallel under its own `outrider --record`, for DURATION (default 70m),
# then each Outrider is stopped with SIGTERM (it passes the signal to its app).
# The traces land in tests/data/traces/real-rt-<name>.csv (an old one is replaced);
# Outrider's own output and the runtimes' versions go to $LOGDIR.
#
# Usage: scripts/record_runtimes.sh [DURATION] [INTERVAL]
#   DURATION: e.g. 70m, 90s (sleep's syntax); INTERVAL: Outrider's --interval (2s).
#   OUTRIDER=path skips the release build; LOGDIR (default /tmp/record_runtimes);
#   ONLY=regex records only the names it matches (e.g. ONLY='jvm-|gunicorn').
#   PORT: the Outriders listen on PORT+1, PORT+2, ... (default 19170).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-70m}
INTERVAL=${2:-2s}
LOGDIR=${LOGDIR:-/tmp/record_runtimes}
APPS=tests/apps/runtimes
OUT=tests/data/traces
if [ -z "${OUTRIDER:-}" ]; then
    cargo build --release --locked
    OUTRIDER=${CARGO_TARGET_DIR:-target}/release/outrider
fi
mkdir -p "$LOGDIR"
{
    date -u
    java -version 2>&1
    node --version
    python3 --version
    gunicorn --version
    "$OUTRIDER" --version
} > "$LOGDIR/versions.txt"

JAVA=(java -XX:+UseG1GC -Xms16m -Xmx256m)
# name | command (by construction: see each app's header)
RECORDINGS=(
    "jvm-cache-fills-and-caps|${JAVA[*]} $APPS/CacheCaps.java 120 10"
    "node-bounded-sawtooth|node $APPS/node_sawtooth.js 120"
    "node-heap-warmup|node $APPS/node_heap_warmup.js 60000"
    "py-lru-cache-caps|python3 $APPS/py_lru_caps.py 64"
    "py-churn-plateau|python3 $APPS/py_churn.py"
    "jvm-leak-1mib|${JAVA[*]} $APPS/JvmLeak.java 1.0 300"
    "node-leak-1mib|node $APPS/node_leak.js 1.0 600"
    "py-leak-0.25mib|python3 $APPS/py_leak.py 0.25 600"
    "py-leak-first-minute|python3 $APPS/py_leak.py 1.0 0"
    "jvm-parallel-churn|java -XX:+UseParallelGC -Xms16m -Xmx256m $APPS/JvmChurn.java 64 2"
    "jvm-g1-xms-touch|java -XX:+UseG1GC -Xms256m -Xmx256m $APPS/JvmChurn.java 64 1"
    "py-batch-bursts|python3 $APPS/py_batch_bursts.py 300 60"
    "node-growing-bursts|node $APPS/node_growing_bursts.js 180 60"
    # name | command | its client (10 requests a second, over twice both caches' keys)
    "gunicorn-lru-workers|gunicorn -w 2 -b 127.0.0.1:19190 --chdir $APPS gunicorn_lru:app|python3 $APPS/lru_client.py 19190 10 8192"
    "py-thread-arenas|python3 $APPS/py_thread_arenas.py 16"
    "jvm-parallel-leak-1mib|java -XX:+UseParallelGC -Xms16m -Xmx256m $APPS/JvmLeak.java 1.0 300"
    "gunicorn-leak-1mib|gunicorn -w 2 -b 127.0.0.1:19191 --chdir $APPS gunicorn_leak:app|python3 $APPS/lru_client.py 19191 10 8192"
    "node-object-leak-1mib|node $APPS/node_object_leak.js 1.0 600"
    "node-object-leak-0.25mib|node $APPS/node_object_leak.js 0.25 600"
)

pids=()
clients=()
port=${PORT:-19170}
for rec in "${RECORDINGS[@]}"; do
    name=${rec%%|*}
    cmd=${rec#*|}
    client=
    if [[ $cmd == *"|"* ]]; then
        client=${cmd#*|}
        cmd=${cmd%%|*}
    fi
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then
        continue
    fi
    trace=$OUT/real-rt-$name.csv
    rm -f "$trace"
    port=$((port + 1))
    # shellcheck disable=SC2086 # the command is split into words on purpose
    "$OUTRIDER" --record "$trace" --interval "$INTERVAL" --listen "127.0.0.1:$port" \
        -- $cmd > "$LOGDIR/$name.log" 2>&1 &
    pids+=($!)
    echo "$(date -u +%T) $name: pid $! port $port: $cmd" | tee -a "$LOGDIR/started.txt"
    if [ -n "$client" ]; then
        # shellcheck disable=SC2086
        $client > "$LOGDIR/$name.client.log" 2>&1 &
        clients+=($!)
    fi
done
sleep "$DURATION"
for pid in "${clients[@]}"; do
    kill "$pid" 2>/dev/null || true
done
for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
done
for pid in "${pids[@]}"; do
    wait "$pid" || true
done
echo "$(date -u +%T) stopped; traces:"
ls -l "$OUT"/real-rt-*.csv
