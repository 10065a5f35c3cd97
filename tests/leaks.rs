//! Leak verdicts against what real runtimes do (issue 17), on the labelled corpus
//! of `scripts/gen_traces.py` (`syn-*`: generated shapes; `rt-*`: runtime-shaped
//! traces labelled by construction; `real-*`: recordings): the verdict does not
//! depend on the trace's phase against the clock, runtimes that are not leaking get
//! none, leaks get theirs in a stated time, and keep it until the growth stops.

mod util;

use outrider::analysis::{AnalysisConfig, Leak, LeakTrackers, Observation};

use util::traces::{labels, load, settings};

/// Every leak verdict (memory, fds, threads, connections) after every observation,
/// with the seconds since the trace's first sample. The leak trackers are what the
/// analyzer runs (`replay` runs sizing as well, which tells nothing about leaks).
const MIB: f64 = 1048576.0;

/// The memory verdict after the last of `obs`, at the default settings.
fn memory_at_end(obs: &[Observation]) -> Leak {
    let mut leaks = LeakTrackers::new(&AnalysisConfig::default());
    obs.iter().map(|o| leaks.observe(o).each[0]).last().unwrap()
}

fn leak_verdicts(obs: &[Observation], cfg: &AnalysisConfig) -> Vec<(f64, [bool; 4])> {
    let mut leaks = LeakTrackers::new(cfg);
    obs.iter()
        .map(|o| (o.t - obs[0].t, leaks.observe(o).each.map(|l| l.suspected)))
        .collect()
}

fn shifted(obs: &[Observation], by: f64) -> Vec<Observation> {
    obs.iter()
        .map(|o| Observation {
            t: o.t + by,
            ..o.clone()
        })
        .collect()
}

/// Issue 17: with buckets aligned to the clock, the Node sawtooth got a verdict at
/// four of eight shifts. Every trace of the corpus, shifted by 15 s steps across two
/// minutes, must get the same verdicts at the same times after its start.
#[test]
fn same_samples_shifted_in_time_get_the_same_verdicts() {
    let labels = labels();
    assert!(labels.contains_key("rt-node-bounded-sawtooth"));
    let mut failures = Vec::new();
    for (name, label) in &labels {
        let cfg = settings(label);
        let obs = load(name);
        let unshifted = leak_verdicts(&obs, &cfg);
        for by in (1..8).map(|k| k as f64 * 15.0) {
            let got = leak_verdicts(&shifted(&obs, by), &cfg);
            if let Some((a, b)) = unshifted.iter().zip(&got).find(|(a, b)| a != b) {
                failures.push(format!("{name} shifted {by} s: {a:?} became {b:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The trace as if it had started `by` seconds later: the buckets cut the same
/// signal elsewhere.
fn started_later(obs: &[Observation], by: f64) -> Vec<Observation> {
    obs.iter()
        .filter(|o| o.t >= obs[0].t + by)
        .cloned()
        .collect()
}

/// The recorded leaks and the latest first verdict allowed after onset. The
/// issue's goals are 15 min for 1 MiB/min and 30 min for 0.25 MiB/min; the JVM's
/// and Node's RSS grow in steps (G1 commits heap regions, V8 and malloc grow in
/// chunks: a plateau of 6-11 min between steps), CPython's start-up ramp lasts 5
/// minutes, and a JVM under Parallel GC hides its leak in memory it already holds
/// for half an hour, so four of the six miss the 15 min and gunicorn's is at it
/// (per start, in the comments: `python3 scripts/detection_quality.py --offsets 8
/// --only real-rt`).
const REAL_LEAKS: [(&str, Option<f64>); 6] = [
    // 0.25 MiB/min from 10 min: 14.8-16.5 min.
    ("real-rt-py-leak-0.25mib", Some(30.0 * 60.0)),
    // 1 MiB/min from the start: 17.8-23 min (was 23.5-28.3 before the
    // start-up ramp was left out of the span-before test).
    ("real-rt-py-leak-first-minute", Some(25.0 * 60.0)),
    // 1 MiB/min from 5 min, RSS in G1's steps: 30.3-33.8 min.
    ("real-rt-jvm-leak-1mib", Some(36.0 * 60.0)),
    // 1 MiB/min from 10 min, RSS in 6-8 MiB steps: 35.5-37 min.
    ("real-rt-node-leak-1mib", Some(40.0 * 60.0)),
    // 1 MiB/min over gunicorn's two workers from the start: 14.3-15.8 min.
    ("real-rt-gunicorn-leak-1mib", Some(18.0 * 60.0)),
    // 1 MiB/min from 5 min under Parallel GC, which had shrunk the heap after
    // start-up: the leak fills memory the JVM already holds, and RSS stays flat until
    // about 38 min. 41.5-42.3 min: 9-10 min after RSS begins to climb.
    ("real-rt-jvm-parallel-leak-1mib", Some(46.0 * 60.0)),
];

/// Runtime-shaped traces (`rt-*`), each started at eight offsets (0 to 105 s) so
/// the buckets cut the signal differently: what is not a leak never gets a verdict,
/// a leak gets none before its onset and its first within the stated time (the
/// times measured are in the comments, from its onset, over the eight starts).
#[test]
fn runtime_shapes_get_no_false_verdict_and_leaks_are_found_in_time() {
    let goals = [
        // Warm-up 98 -> 107 MiB under 30-56 MiB bursts every 2 min.
        ("rt-node-bounded-sawtooth", None),
        // G1-like steps 316 -> 362 MiB over 45 min, then flat.
        ("rt-jvm-heap-expands-then-flat", None),
        // G1-like steps 180 -> 270 MiB, eight 7 min apart, each 0.85 of the one
        // before: flagged at 26.5-31.75 min from every start before the staircase veto.
        ("rt-jvm-g1-shrinking-steps", None),
        // Fills at a falling rate to a 64 MiB cap, then churns.
        ("rt-cache-fills-and-caps", None),
        // Flat for an hour, then a 10 MiB warm-up (8-min time constant) and a
        // 100 MiB one (15 min): flagged at 81-82 min before the pace was asked of
        // the growth from where it began (`scripts/leak_stress.py`).
        ("rt-late-warmup-10mib", None),
        ("rt-late-warmup-100mib", None),
        // 30 MiB, 8-min time constant: flagged 7.5-9 min into the warm-up from two
        // of the eight starts while the growth's halves were asked the share for
        // the whole segment's span, not the growth's (its seed was picked for it).
        ("rt-late-warmup-30mib", None),
        // 1 MiB/min under a 2-min sawtooth: found 8-14 min after onset (was 20-25
        // with no verdict before half a window).
        ("rt-leak-1mib-sawtooth-fixed", Some(15.0 * 60.0)),
        // 0.25 MiB/min: 27-28 min (was 42-45).
        ("rt-leak-0.25mib", Some(30.0 * 60.0)),
        // 1 MiB/min from 30 s: 15.5-19 min (was 29.5-31).
        ("rt-leak-first-minute", Some(20.0 * 60.0)),
        // Recorded from real runtimes (`scripts/record_runtimes.sh`; how each was
        // made: tests/data/traces/README.md). Not leaking:
        ("real-rt-jvm-cache-fills-and-caps", None),
        ("real-rt-node-bounded-sawtooth", None),
        ("real-rt-node-heap-warmup", None),
        ("real-rt-py-lru-cache-caps", None),
        ("real-rt-py-churn-plateau", None),
        // Recorded on 2026-12-04 (the second set): Parallel GC sizing its heap, G1
        // with -Xms = -Xmx touching its regions, CPython batches, V8 batches that
        // grow to a cap over 18 min, gunicorn workers' caches, glibc arenas.
        ("real-rt-jvm-parallel-churn", None),
        ("real-rt-jvm-g1-xms-touch", None),
        ("real-rt-py-batch-bursts", None),
        ("real-rt-node-growing-bursts", None),
        ("real-rt-gunicorn-lru-workers", None),
        ("real-rt-py-thread-arenas", None),
        // Recorded with the JVM's heap columns (`scripts/record_jvm_heaps.sh`,
        // 2026-12-05): the old generation's own verdict (`analysis::heap`) must
        // not flag a heap that churns, fills a cache, touches its committed
        // regions or holds sessions in a large young generation.
        ("real-heap-jvm-g1-churn", None),
        ("real-heap-jvm-parallel-churn", None),
        ("real-heap-jvm-g1-cache-fills-and-caps", None),
        ("real-heap-jvm-g1-xms-touch", None),
        ("real-heap-jvm-g1-big-heap-sessions", None),
        // Sessions that expire after 10 min, promoted by a small young generation
        // and dead in an old generation not collected in the 36 min: RSS and the
        // old generation both +1 MiB/min. RSS alone flagged them at 16 and 18 min;
        // RSS growth an uncollected old generation explains is withheld now.
        ("real-heap-jvm-g1-promoted-sessions", None),
        ("real-heap-jvm-parallel-promoted-sessions", None),
        // 1 MiB/min from 5 min under Parallel GC: 13.5-14.3 min from the heap;
        // RSS alone gave no verdict in the 62 min of the recording (the heap had
        // shrunk after start-up: the leak fills memory the JVM already holds).
        ("real-heap-jvm-parallel-leak-1mib", Some(18.0 * 60.0)),
        // The same under G1 (recorded again on 2026-12-06, with the young
        // generation's commits): 22.0-28.5 min, from the heap (G1 collects the
        // old generation every ~11 min: the levels after its collections come
        // slowly).
        ("real-heap-jvm-g1-leak-1mib", Some(32.0 * 60.0)),
        // OpenJDK 17's single-generation collectors (2026-12-05, the same script;
        // ZGC's recorded again with its shared memory, Shenandoah's on 2026-12-06
        // with its committed heap): churn and a capped cache under each; a
        // 1 MiB/min leak found from the heap under ZGC at 13.5-14.3 min, under
        // Shenandoah at 28.7-32.7 (its trend read on what each cycle leaves; the
        // first recording's, cycles 2.6 min apart, at 23.5-28.6). ZGC's cache was
        // flagged from RSS at 46 min before the RSS trend left the heap out (ZGC
        // maps it three times; RSS +74 MiB from 10 to 60 min, the memory outside
        // the heap +1.5 MiB).
        ("real-heap-jvm-shenandoah-churn", None),
        ("real-heap-jvm-shenandoah-cache-fills-and-caps", None),
        ("real-heap-jvm-shenandoah-leak-1mib", Some(34.0 * 60.0)),
        ("real-heap-jvm-zgc-churn", None),
        ("real-heap-jvm-zgc-cache-fills-and-caps", None),
        ("real-heap-jvm-zgc-leak-1mib", Some(17.0 * 60.0)),
        // JDK 25 (Temurin 25.0.3, 2026-12-06, the same script): G1, and ZGC,
        // generational (its heap mapped once, an old generation of its own). No
        // verdict on G1's capped cache, ZGC's churn or its capped cache; a
        // 1 MiB/min leak found from the heap at 11.8-14.5 min under G1 and
        // 12.5-15.2 under ZGC (12.5-16.4 before its old generation's 2 MiB
        // pages were read as spread growth: `trend::spread_growth`). Read as RSS less the old generation's commits
        // alone, G1's memory outside the heap rose 106 -> 135 MiB (10-min
        // floors) while the leak was in the heap, and 99 -> 138 under the
        // capped cache; with the young generation's left out too, 74-77 and
        // 79-80 from 20 min.
        ("real-heap-jdk25-g1-cache-fills-and-caps", None),
        ("real-heap-jdk25-zgc-churn", None),
        ("real-heap-jdk25-zgc-cache-fills-and-caps", None),
        ("real-heap-jdk25-g1-leak-1mib", Some(17.0 * 60.0)),
        ("real-heap-jdk25-zgc-leak-1mib", Some(16.0 * 60.0)),
        // JDK 25 again (2026-12-06 from 03:42 UTC): generational ZGC without its
        // proactive cycles (-XX:-ZProactive), so it collects its young
        // generation alone (minor collections) and the old one rarely. Churn,
        // and sessions that expire in a 1 GiB heap grown to 938 MiB committed:
        // no verdict. A 1 MiB/min leak: major collections at 22 and 44 min only
        // (the old generation grows by promotion between them, garbage as much
        // as leak), found at 39.9 min, once the level the second one left counts
        // (`analysis::heap`, `levels_now`): never within the recording before.
        // G1 giving memory back (-XX:G1PeriodicGCInterval=30000) after batches
        // of 120 MiB every 10 min: its committed heap 24 -> 225 MiB and back,
        // no verdict.
        ("real-heap-jdk25-zgc-minors-churn", None),
        ("real-heap-jdk25-zgc-minors-sessions", None),
        ("real-heap-jdk25-g1-batches", None),
        ("real-heap-jdk25-zgc-minors-leak-1mib", Some(44.0 * 60.0)),
        // Node's leak in V8's own heap (2026-12-06: plain objects in a Map, 1
        // MiB/min from 10 min; RSS climbs with V8's heap under its GC's
        // sawtooth): 16.5-23.0 min. Its 0.25 MiB/min twin, recorded beside it,
        // got no verdict in its 52 min of leak and is not labelled
        // (tests/data/traces/README.md).
        ("real-rt-node-object-leak-1mib", Some(25.0 * 60.0)),
        // Leaking (bounds: REAL_BOUNDS).
        REAL_LEAKS[0],
        REAL_LEAKS[1],
        REAL_LEAKS[2],
        REAL_LEAKS[3],
        REAL_LEAKS[4],
        REAL_LEAKS[5],
    ];
    let labels = labels();
    let mut failures = Vec::new();
    for (name, goal) in goals {
        let label = &labels[name];
        assert_eq!(
            label["memory_leak"].as_bool(),
            Some(goal.is_some()),
            "{name}"
        );
        let cfg = settings(label);
        let obs = load(name);
        let onset = label["leak_onset"].as_f64();
        for by in (0..8).map(|k| k as f64 * 15.0) {
            let verdicts = leak_verdicts(&started_later(&obs, by), &cfg);
            // Seconds since the trace's own first sample.
            let first = verdicts.iter().find(|v| v.1[0]).map(|v| v.0 + by);
            match (goal, onset, first) {
                (None, _, Some(t)) => failures.push(format!("{name} +{by} s: verdict at {t} s")),
                (Some(_), _, None) => failures.push(format!("{name} +{by} s: missed")),
                (Some(goal), Some(onset), Some(t)) if t < onset || t - onset > goal => failures
                    .push(format!(
                        "{name} +{by} s: found {:.0} s after onset",
                        t - onset
                    )),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A leak in a 2 GiB G1 heap whose old generation was first collected at 38.7 min
/// (`real-heap-jvm-g1-big-heap-leak-1mib`, not in the scored corpus: nothing reads
/// it as a leak within the recording). Before that collection the old generation
/// rose 86 -> 165 MiB, 2.4 MiB/min for a 1 MiB/min leak: promoted garbage as much
/// as leak. Its trend alone gave a verdict at 28.1 min; a heap not collected since
/// its growth began gives none, whatever the rate, so not before the collection
/// (nor after it, within the recording: one level after a collection is not a
/// rise). RSS gives none either (it fell 442 -> 352 MiB at the collection).
#[test]
fn a_heap_not_collected_since_it_grew_gives_no_verdict() {
    let name = "real-heap-jvm-g1-big-heap-leak-1mib";
    let obs = load(name);
    let first_collection = obs
        .iter()
        .find(|o| o.jvm.is_some_and(|j| j.old_collections > 0))
        .map(|o| o.t - obs[0].t)
        .expect("collected in the recording");
    assert!(first_collection > 38.0 * 60.0, "{first_collection}");
    let cfg = AnalysisConfig::default();
    for by in (0..8).map(|k| k as f64 * 15.0) {
        let verdicts = leak_verdicts(&started_later(&obs, by), &cfg);
        let first = verdicts.iter().find(|v| v.1[0]).map(|v| v.0 + by);
        assert_eq!(first, None, "{name} +{by} s");
    }
}

/// A leak in a JVM's heap ends in `OutOfMemoryError` when the old generation is
/// at its maximum (`jvm_old_max_bytes`: 256 MiB under G1 and 171 MiB under
/// Parallel GC for these JVMs' `-Xmx256m`), not at a memory limit. Both recorded
/// leaks keep 1 MiB/min (by construction): the time to a full old generation at
/// the end of the recording is what is left of the maximum over the live set then
/// (at most the least the old generation held in the last 10 min), at 1 MiB/min,
/// within a fifth.
#[test]
fn a_leak_in_a_jvms_heap_says_when_the_heap_is_full() {
    for name in [
        "real-heap-jvm-parallel-leak-1mib",
        "real-heap-jvm-g1-leak-1mib",
    ] {
        let obs = load(name);
        let memory = memory_at_end(&obs);
        let end = obs.last().unwrap().t;
        let heaps = || {
            obs.iter()
                .filter(|o| o.t >= end - 600.0)
                .filter_map(|o| o.jvm)
        };
        let max = heaps().find_map(|j| j.old_max_bytes).expect("published") as f64;
        let live = heaps().map(|j| j.old_used_bytes).min().unwrap() as f64;
        let want = (max - live) / (MIB / 60.0);
        let got = memory
            .time_to_heap_max_seconds
            .expect("a time to the maximum");
        assert!(memory.suspected, "{name}: {memory:?}");
        assert!(
            (got - want).abs() <= want / 5.0,
            "{name}: {:.0} min, want about {:.0}",
            got / 60.0,
            want / 60.0
        );
    }
}

/// Every recorded JVM leak keeps 1 MiB/min in its heap (by construction): the
/// memory verdict at the end of the recording says so, at that rate within a
/// fifth. Read as RSS less the old generation's commits alone, JDK 25's G1 leak
/// was told at 0.46 MiB/min: the young generation's commits, which grew with the
/// heap, read as memory outside it.
#[test]
fn a_jvm_leak_is_told_at_its_own_rate() {
    for name in [
        "real-heap-jvm-parallel-leak-1mib",
        "real-heap-jvm-g1-leak-1mib",
        "real-heap-jvm-shenandoah-leak-1mib",
        "real-heap-jvm-zgc-leak-1mib",
        "real-heap-jdk25-g1-leak-1mib",
        "real-heap-jdk25-zgc-leak-1mib",
    ] {
        let memory = memory_at_end(&load(name));
        assert!(memory.suspected && memory.in_heap, "{name}: {memory:?}");
        let rate = memory.growth_per_second.unwrap_or(0.0) * 60.0 / MIB;
        assert!((0.8..=1.2).contains(&rate), "{name}: {rate:.2} MiB/min");
    }
}

/// A tick without heap figures (a failed read of the perf-data file) must not let
/// through the RSS verdict an uncollected heap holds back: once shown it stays.
#[test]
fn a_gap_in_the_heap_figures_does_not_let_rss_through() {
    let name = "real-heap-jvm-g1-promoted-sessions";
    let mut obs = load(name);
    for o in obs.iter_mut().step_by(50) {
        o.jvm = None;
    }
    let cfg = AnalysisConfig::default();
    let first = leak_verdicts(&obs, &cfg)
        .iter()
        .find(|v| v.1[0])
        .map(|v| v.0);
    assert_eq!(first, None, "{name} with a gap every 50 ticks");
}

/// Issue 17: the live MemoryLeakSuspected alert fired and resolved five times in
/// 100 minutes for one leak. Every memory leak of the corpus, started at eight
/// offsets, gets its verdict once per run of the process (the crash loop restarts)
/// and keeps it; a leak that is fixed (`leak_end`) loses it once, within 35 min
/// (measured: 28.25-29 min after the fix, as the recent half-window's rate falls).
#[test]
fn a_leak_verdict_turns_on_once_and_off_once_it_is_fixed() {
    let mut failures = Vec::new();
    for (name, label) in labels() {
        // The recorded JVM leak's RSS is a staircase (G1 commits heap regions,
        // flat for up to 20 min between steps): held on the rate alone, its
        // verdict went off and on again (on at 35 min, off at 54, on at 59); the
        // envelope's climb across the recent half window holds it now.
        if label["memory_leak"] != true {
            continue;
        }
        let cfg = settings(&label);
        let obs = load(&name);
        let runs = 1 + obs.iter().filter_map(|o| o.restarts).fold(0.0, f64::max) as usize;
        let end = label["leak_end"].as_f64();
        for by in (0..8).map(|k| k as f64 * 15.0) {
            let (mut on, mut off, mut was) = (Vec::new(), Vec::new(), false);
            for (t, s) in leak_verdicts(&started_later(&obs, by), &cfg) {
                if s[0] != was {
                    if s[0] { &mut on } else { &mut off }.push(t + by);
                }
                was = s[0];
            }
            // `cargo test --release --test leaks -- --nocapture` shows the times.
            eprintln!("{name} +{by} s: on at {on:?} s, off at {off:?} s");
            let restarts_clear = runs > 1 && off.len() + 1 >= on.len();
            let fixed_once = match end {
                Some(end) => off.len() == 1 && off[0] > end && off[0] - end <= 35.0 * 60.0,
                None => off.is_empty(),
            };
            if on.len() != runs || !(restarts_clear || fixed_once) {
                failures.push(format!("{name} +{by} s: on at {on:?}, off at {off:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The stress shapes of `scripts/leak_stress.py` (95 generated with fixed seeds, 70
/// of them leak-free, each replayed by the built binary from four starts 15 s
/// apart): no leak-free shape flagged that is not in its `KNOWN_FALSE` (and none
/// there that passes now, so the list only shrinks), every leak found, and the
/// latency medians within the goals (15 min for 1 MiB/min and more, 30 for
/// 0.25 MiB/min). About 20 s with a debug build.
#[test]
fn stress_shapes_get_no_new_false_verdict_and_leaks_are_found_in_time() {
    let out = std::process::Command::new("python3")
        .args(["scripts/leak_stress.py", "--check", "--offsets", "4"])
        .args(["--binary", env!("CARGO_BIN_EXE_outrider")])
        .output()
        .expect("python3 runs scripts/leak_stress.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
