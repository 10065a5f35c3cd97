#!/usr/bin/env bash
# Records JVMs with their heap's own figures (issue 17): every app runs under its
# own `outrider --record` as scripts/record_runtimes.sh runs them, and Outrider
# records the JVM's heap from its perf-data file (what `jstat` reads) in the
# trace's `jvm_*` columns. Traces land in tests/data/traces/real-heap-<name>.csv.
# JDK 25's runs need Temurin 25 at $JAVA25 (not a Debian package).
#
# Usage: scripts/record_jvm_heaps.sh [DURATION] [INTERVAL]
#   OUTRIDER=path skips the release build; LOGDIR (default /tmp/record_jvm_heaps);
#   ONLY=regex records only the names it matches; PORT (default 19270).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60m}
INTERVAL=${2:-2s}
LOGDIR=${LOGDIR:-/tmp/record_jvm_heaps}
APPS=tests/apps/runtimes
OUT=tests/data/traces
if [ -z "${OUTRIDER:-}" ]; then
    cargo build --release --locked
    OUTRIDER=${CARGO_TARGET_DIR:-target}/release/outrider
fi
mkdir -p "$LOGDIR"
JAVA25=${JAVA25:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/java}
{ date -u; java -version 2>&1; "$JAVA25" -version 2>&1 || true; "$OUTRIDER" --version; } > "$LOGDIR/versions.txt"

G1=(java -XX:+UseG1GC -Xms16m -Xmx256m)
PAR=(java -XX:+UseParallelGC -Xms16m -Xmx256m)
BIG=(java -XX:+UseG1GC -Xmx2g)
ZGC=(java -XX:+UseZGC -Xms16m -Xmx256m)
SHEN=(java -XX:+UseShenandoahGC -Xms16m -Xmx256m)
# JDK 25 (the LTS of 2025): G1, and ZGC, generational from JDK 21 and only so
# from JDK 24.
G1_25=("$JAVA25" -XX:+UseG1GC -Xms16m -Xmx256m)
ZGC_25=("$JAVA25" -XX:+UseZGC -Xms16m -Xmx256m)
# Generational ZGC without its proactive cycles (-XX:-ZProactive): it collects
# when the heap fills, young generation first (minor collections), as a busier
# JVM's does; with them on, the light apps here saw only major collections.
ZGCM_25=("$JAVA25" -XX:+UseZGC -XX:-ZProactive -Xms16m -Xmx256m)
# G1 told to give memory back (JEP 346): a collection when none came for 30 s.
G1P_25=("$JAVA25" -XX:+UseG1GC -XX:G1PeriodicGCInterval=30000 -Xms16m -Xmx512m)
# name | command (by construction: see each app's header)
RECORDINGS=(
    "jvm-g1-leak-1mib|${G1[*]} $APPS/JvmLeak.java 1.0 300"
    "jvm-parallel-leak-1mib|${PAR[*]} $APPS/JvmLeak.java 1.0 300"
    "jvm-g1-big-heap-leak-1mib|${BIG[*]} $APPS/JvmLeak.java 1.0 300"
    "jvm-g1-churn|${G1[*]} $APPS/JvmChurn.java 64 2"
    "jvm-parallel-churn|${PAR[*]} $APPS/JvmChurn.java 64 2"
    "jvm-g1-cache-fills-and-caps|${G1[*]} $APPS/CacheCaps.java 120 10"
    "jvm-g1-xms-touch|java -XX:+UseG1GC -Xms256m -Xmx256m $APPS/JvmChurn.java 64 1"
    "jvm-g1-big-heap-sessions|${BIG[*]} $APPS/JvmSessions.java 1.0 600"
    # A small young generation: sessions outlive it and die in the old one.
    "jvm-g1-promoted-sessions|java -XX:+UseG1GC -Xmx1g -XX:MaxNewSize=32m $APPS/JvmSessions.java 1.0 600"
    "jvm-parallel-promoted-sessions|java -XX:+UseParallelGC -Xmx1g -Xmn32m $APPS/JvmSessions.java 1.0 600"
    # The single-generation collectors (OpenJDK 17's ZGC and Shenandoah).
    "jvm-zgc-leak-1mib|${ZGC[*]} $APPS/JvmLeak.java 1.0 300"
    "jvm-zgc-churn|${ZGC[*]} $APPS/JvmChurn.java 64 2"
    "jvm-zgc-cache-fills-and-caps|${ZGC[*]} $APPS/CacheCaps.java 120 10"
    "jvm-shenandoah-leak-1mib|${SHEN[*]} $APPS/JvmLeak.java 1.0 300"
    "jvm-shenandoah-churn|${SHEN[*]} $APPS/JvmChurn.java 64 2"
    "jvm-shenandoah-cache-fills-and-caps|${SHEN[*]} $APPS/CacheCaps.java 120 10"
    "jdk25-g1-leak-1mib|${G1_25[*]} $APPS/JvmLeak.java 1.0 300"
    "jdk25-g1-cache-fills-and-caps|${G1_25[*]} $APPS/CacheCaps.java 120 10"
    "jdk25-zgc-leak-1mib|${ZGC_25[*]} $APPS/JvmLeak.java 1.0 300"
    "jdk25-zgc-churn|${ZGC_25[*]} $APPS/JvmChurn.java 64 2"
    "jdk25-zgc-cache-fills-and-caps|${ZGC_25[*]} $APPS/CacheCaps.java 120 10"
    "jdk25-zgc-minors-leak-1mib|${ZGCM_25[*]} $APPS/JvmLeak.java 1.0 300"
    "jdk25-zgc-minors-churn|${ZGCM_25[*]} $APPS/JvmChurn.java 64 20"
    "jdk25-zgc-minors-sessions|$JAVA25 -XX:+UseZGC -XX:-ZProactive -Xmx1g $APPS/JvmSessions.java 1.0 600"
    "jdk25-g1-batches|${G1P_25[*]} $APPS/JvmBatch.java 120 600 180 0.1"
)
pids=()
port=${PORT:-19270}
for rec in "${RECORDINGS[@]}"; do
    name=${rec%%|*}
    cmd=${rec#*|}
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then
        continue
    fi
    trace=$OUT/real-heap-$name.csv
    rm -f "$trace"
    port=$((port + 1))
    # shellcheck disable=SC2086 # the command is split into words on purpose
    "$OUTRIDER" --record "$trace" --interval "$INTERVAL" --listen "127.0.0.1:$port" \
        -- $cmd > "$LOGDIR/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    echo "$(date -u +%T) $name: outrider $pid port $port: $cmd" | tee -a "$LOGDIR/started.txt"
done
sleep "$DURATION"
for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
done
for pid in "${pids[@]}"; do
    wait "$pid" || true
done
echo "$(date -u +%T) stopped; traces:"
ls -l "$OUT"/real-heap-*.csv
