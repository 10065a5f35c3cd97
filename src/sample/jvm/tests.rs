use super::*;

/// A perf-data file as HotSpot writes one: the header, then `entries`, each a
/// name and a long value (`J`, vector length 0), plus a string entry (`B`) that
/// must be skipped.
fn perf_file(little: bool, entries: &[(&str, i64)]) -> Vec<u8> {
    let u32b = |v: u32| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let mut body = Vec::new();
    let mut entry = |name: &str, kind: u8, vector: u32, data: &[u8]| {
        // length, name offset, vector length, type, flags, units, variability,
        // data offset; name at 20, data 8-aligned after it.
        let name_at = 20usize;
        let data_at = (name_at + name.len() + 1).div_ceil(8) * 8;
        let len = (data_at + data.len()).div_ceil(8) * 8;
        let mut e = Vec::with_capacity(len);
        e.extend(u32b(len as u32));
        e.extend(u32b(name_at as u32));
        e.extend(u32b(vector));
        e.extend([kind, 0, 2, 3]);
        e.extend(u32b(data_at as u32));
        e.extend(name.as_bytes());
        e.resize(data_at, 0);
        e.extend(data);
        e.resize(len, 0);
        body.extend(e);
    };
    entry("sun.gc.policy.name", b'B', 13, b"GarbageFirst\0");
    for (name, v) in entries {
        entry(
            name,
            b'J',
            0,
            &if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            },
        );
    }
    let mut f = Vec::new();
    f.extend(0xcafe_c0c0u32.to_be_bytes());
    f.extend([little as u8, 2, 0, 1]);
    f.extend(u32b((HEADER + body.len()) as u32));
    f.extend(u32b(0));
    f.extend([0u8; 8]);
    f.extend(u32b(HEADER as u32));
    f.extend(u32b(entries.len() as u32 + 1));
    f.extend(body);
    f.resize(32 * 1024, 0);
    f
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const G1: [(&str, i64); 6] = [
    (YOUNG, 10),
    (FULL, 1),
    (CONCURRENT, 4),
    (OLD_MAX, 268_435_464),
    (OLD_CAPACITY, 22_020_104),
    (OLD_USED, 10_670_592),
];

#[test]
fn both_byte_orders_read_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    for little in [true, false] {
        let p = write(dir.path(), "1", &perf_file(little, &G1));
        let heap = PerfData::open(&p).unwrap().read().unwrap();
        assert_eq!(
            heap,
            Some(JvmHeap {
                old_used_bytes: 10_670_592,
                old_capacity_bytes: 22_020_104,
                young_capacity_bytes: None,
                old_max_bytes: Some(268_435_464),
                old_collections: 5,
                young_collections: 10,
                heap_mappings: 1,
                shmem_resident_bytes: None,
                max_heap_bytes: None,
                heap_share: None,
                initial_heap_bytes: None,
                collector_given: None,
                ergonomics: None,
            }),
            "little endian: {little}"
        );
    }
}

/// The heap read from a G1 file without the entry `name`.
fn heap_without(name: &str) -> JvmHeap {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<_> = G1.iter().copied().filter(|e| e.0 != name).collect();
    let p = write(dir.path(), "1", &perf_file(true, &entries));
    PerfData::open(&p).unwrap().read().unwrap().unwrap()
}

#[test]
fn a_collector_without_concurrent_cycles_counts_full_collections_alone() {
    assert_eq!(heap_without(CONCURRENT).old_collections, 1);
}

/// OpenJDK 17's ZGC, as `jcmd PID PerfCounter.print` shows it: the heap as
/// generation 1, the pauses of its cycles as collector 2, no collector 0 or 1;
/// its heap mapped three times.
#[test]
fn zgc_counts_its_cycles_pauses_and_no_young_collections() {
    let dir = tempfile::tempdir().unwrap();
    let zgc = [
        (CONCURRENT, 27),
        (OLD_MAX, 67_108_864),
        (OLD_CAPACITY, 67_108_864),
        (OLD_USED, 23_068_672),
    ];
    let p = write(dir.path(), "1", &perf_file(true, &zgc));
    let heap = PerfData::open(&p).unwrap().read().unwrap();
    assert_eq!(
        heap,
        Some(JvmHeap {
            old_used_bytes: 23_068_672,
            old_capacity_bytes: 67_108_864,
            young_capacity_bytes: None,
            old_max_bytes: Some(67_108_864),
            old_collections: 27,
            young_collections: 0,
            heap_mappings: 3,
            shmem_resident_bytes: None,
            max_heap_bytes: None,
            heap_share: None,
            initial_heap_bytes: None,
            collector_given: None,
            ergonomics: None,
        })
    );
}

#[test]
fn a_jvm_that_does_not_publish_its_maximum_still_gives_its_heap() {
    let heap = heap_without(OLD_MAX);
    assert_eq!(
        (heap.old_used_bytes, heap.old_max_bytes),
        (10_670_592, None)
    );
}

#[test]
fn a_starting_jvm_reads_as_none_until_ready_and_values_are_read_again_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = perf_file(true, &G1);
    bytes[7] = 0; // not accessible yet: the JVM is starting
    let p = write(dir.path(), "1", &bytes);
    let mut data = PerfData::open(&p).unwrap();
    assert_eq!(data.read().unwrap(), None);
    bytes[7] = 1;
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(data.read().unwrap().unwrap().old_used_bytes, 10_670_592);
    // The JVM writes its counters in place; the file is not opened again.
    let used = data.at[0] as usize;
    bytes[used..used + 8].copy_from_slice(&99i64.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(data.read().unwrap().unwrap().old_used_bytes, 99);
}

#[test]
fn an_entry_being_written_ends_the_walk_and_keeps_the_entries_before_it() {
    // The JVM counts an entry before it writes it: the last one reads as zeros.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = perf_file(true, &G1);
    let count = u32::from_le_bytes(bytes[28..32].try_into().unwrap());
    bytes[28..32].copy_from_slice(&(count + 1).to_le_bytes());
    let p = write(dir.path(), "1", &bytes);
    let heap = PerfData::open(&p).unwrap().read().unwrap().unwrap();
    assert_eq!(heap.old_used_bytes, 10_670_592);
}

#[test]
fn other_files_and_other_collectors_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let no_old: Vec<_> = G1.iter().copied().filter(|e| e.0 != OLD_USED).collect();
    let never_reclaimed: Vec<_> = G1
        .iter()
        .copied()
        .filter(|e| e.0 != FULL && e.0 != CONCURRENT)
        .collect();
    let cases = [
        ("short", vec![0xca, 0xfe]),
        ("magic", vec![0u8; 4096]),
        ("no old generation", perf_file(true, &no_old)),
        ("no collection of it", perf_file(true, &never_reclaimed)),
    ];
    for (name, bytes) in cases {
        let p = write(dir.path(), name, &bytes);
        match PerfData::open(&p) {
            Err(OpenError::Layout(why)) => assert!(!why.is_empty(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Entries that claim to run past the file end the walk with an error, never
    // a read out of bounds.
    let mut bytes = perf_file(true, &G1);
    bytes[HEADER..HEADER + 4].copy_from_slice(&8u32.to_le_bytes());
    let p = write(dir.path(), "tiny-entry", &bytes);
    assert!(matches!(PerfData::open(&p), Err(OpenError::Layout(_))));
    bytes.truncate(HEADER + 10);
    let p = write(dir.path(), "cut", &bytes);
    assert!(matches!(PerfData::open(&p), Err(OpenError::Layout(_))));
}

#[test]
fn the_file_is_found_under_the_process_root_by_its_namespace_pid() {
    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join("4242/root/tmp");
    std::fs::create_dir_all(tmp.join("hsperfdata_app")).unwrap();
    std::fs::create_dir_all(tmp.join("other")).unwrap();
    write(&tmp.join("hsperfdata_app"), "7", &perf_file(true, &G1));
    assert_eq!(
        find(root.path(), 4242, 7).unwrap(),
        Some(tmp.join("hsperfdata_app/7"))
    );
    assert_eq!(find(root.path(), 4242, 8).unwrap(), None);
    assert_eq!(find(root.path(), 1, 7).unwrap(), None);
    // A symlink under another container's root would resolve against Outrider's:
    // neither a linked directory nor a linked file is taken.
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    write(&elsewhere, "9", &perf_file(true, &G1));
    std::os::unix::fs::symlink(&elsewhere, tmp.join("hsperfdata_link")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("9"), tmp.join("hsperfdata_app/10")).unwrap();
    assert_eq!(find(root.path(), 4242, 9).unwrap(), None);
    assert_eq!(find(root.path(), 4242, 10).unwrap(), None);
}

#[test]
fn a_fifo_in_the_files_place_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("1");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(matches!(PerfData::open(&p), Err(OpenError::Layout(_))));
}

#[test]
fn shared_memory_resident_is_read_from_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("7")).unwrap();
    let status = "Name:\tjava\nVmRSS:\t  135224 kB\nRssAnon:\t   37008 kB\n\
                  RssFile:\t   30732 kB\nRssShmem:\t   67484 kB\nVmData:\t 1 kB\n";
    std::fs::write(dir.path().join("7/status"), status).unwrap();
    assert_eq!(shmem_resident(dir.path(), 7), Some(67484 * 1024));
    assert_eq!(shmem_resident(dir.path(), 8), None, "no such process");
}

/// Measured on a churning ZGC JVM (OpenJDK 17): RSS 132 MiB, RssShmem 66 MiB,
/// 28 MiB committed, PSS 90 MiB.
#[test]
fn a_heap_mapped_three_times_is_counted_once() {
    let mib = |v: u64| v << 20;
    let mut zgc = JvmHeap {
        old_capacity_bytes: mib(28),
        young_capacity_bytes: None,
        heap_mappings: 3,
        ..JvmHeap::default()
    };
    // Without its shared memory read (older traces): twice the committed bytes.
    assert_eq!(zgc.counted_again_bytes(mib(132)), mib(56));
    // With it: two thirds of it, what PSS leaves out.
    zgc.shmem_resident_bytes = Some(mib(66));
    assert_eq!(zgc.counted_again_bytes(mib(132)), mib(44));
    // Never below a third of RSS.
    assert_eq!(zgc.counted_again_bytes(mib(30)), mib(20));
    // Other collectors map their heap once.
    let g1 = JvmHeap {
        old_capacity_bytes: mib(28),
        young_capacity_bytes: None,
        ..zgc
    };
    assert_eq!(
        JvmHeap {
            heap_mappings: 1,
            ..g1
        }
        .counted_again_bytes(mib(132)),
        0
    );
    assert_eq!(
        JvmHeap {
            heap_mappings: 0,
            ..g1
        }
        .counted_again_bytes(mib(132)),
        0
    );
}

/// Perf-data files of real JVMs (`tests/data/hsperf/`, how each was made in its
/// README): what is read from each, as `jcmd PID PerfCounter.print` showed it.
#[test]
fn real_jvms_files_give_their_whole_committed_heap_under_every_collector() {
    let read = |name: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/hsperf")
            .join(name);
        let mut data = PerfData::open(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        (data.zgc, data.read().unwrap().unwrap())
    };
    let heap = |used, old, young, max, old_collections, young_collections, mappings| JvmHeap {
        old_used_bytes: used,
        old_capacity_bytes: old,
        young_capacity_bytes: young,
        old_max_bytes: Some(max),
        old_collections,
        young_collections,
        heap_mappings: mappings,
        shmem_resident_bytes: None,
        // Every one was started with -Xms16m -Xmx256m (`java.rt.vmArgs`).
        max_heap_bytes: Some(256 << 20),
        heap_share: None,
        initial_heap_bytes: Some(16 << 20),
        collector_given: Some(true),
        ergonomics: Some(Ergonomics::default()),
    };
    let g1 = heap(
        93_847_680,
        114_294_784,
        Some(41_943_040),
        268_435_456,
        30,
        40,
        1,
    );
    assert_eq!(read("jdk25-g1"), (false, g1));
    assert_eq!(g1.committed_bytes(), 156_237_824);
    let parallel = heap(
        81_250_384,
        81_264_640,
        Some(87_556_096),
        179_306_496,
        0,
        13,
        1,
    );
    assert_eq!(read("jdk25-parallel"), (false, parallel));
    // Shenandoah: its space's capacity is the heap's maximum (256 MiB); the
    // generation's is what it has committed.
    let shenandoah = heap(177_541_584, 254_541_824, Some(0), 268_435_456, 112, 0, 1);
    assert_eq!(read("jdk17-shenandoah"), (false, shenandoah));
    assert_eq!(shenandoah.heap_in_rss_bytes(), Some(254_541_824));
    let shenandoah = heap(170_914_048, 268_435_456, Some(0), 268_435_456, 126, 0, 1);
    assert_eq!(read("jdk25-shenandoah"), (false, shenandoah));
    // Generational ZGC: a collector 0 (no minor collection yet), the old
    // generation's capacity its used bytes, the rest of the heap young; mapped
    // once, its resident heap read from `RssShmem` (110,344 kB here, against
    // 115,343,360 bytes committed).
    let zgc = heap(
        65_011_712,
        65_011_712,
        Some(50_331_648),
        268_435_456,
        80,
        0,
        1,
    );
    assert_eq!(read("jdk25-zgc"), (true, zgc));
    assert_eq!(zgc.committed_bytes(), 115_343_360);
    let resident = JvmHeap {
        shmem_resident_bytes: Some(110_344 * 1024),
        ..zgc
    };
    assert_eq!(resident.heap_in_rss_bytes(), Some(110_344 * 1024));
    assert_eq!(resident.counted_again_bytes(196_872 * 1024), 0);
}

/// The heap's maximum as the JVM was given it: the last `-Xmx` or
/// `-XX:MaxHeapSize` of its arguments (`JAVA_TOOL_OPTIONS` come first, so the
/// command line's wins), in the units the JVM takes; none where the JVM sizes
/// its heap itself.
#[test]
fn the_heap_maximum_is_the_last_one_given() {
    assert_eq!(
        max_heap("-Xms16m -Xmx256m --add-modules=ALL-DEFAULT"),
        Some(256 << 20)
    );
    assert_eq!(max_heap("-Xmx100m -Xms8m -Xmx2G"), Some(2 << 30));
    assert_eq!(max_heap("-XX:MaxHeapSize=1g -Dx=1"), Some(1 << 30));
    assert_eq!(max_heap("-Xmx524288k"), Some(512 << 20));
    assert_eq!(max_heap("-Xmx268435456"), Some(256 << 20));
    assert_eq!(max_heap("-XX:MaxRAMPercentage=75.0 -Xms64m"), None);
    assert_eq!(max_heap("-Xmx1q"), None);
    assert_eq!(max_heap(""), None);
    // Without one, the share of the memory it sees: 25% by default.
    // Without one, the shares of the memory it sees: 25% by default, 50% in a
    // small container.
    let max = |args: &str| heap_share(args).map(|s| s.max);
    assert_eq!(heap_share("-Xms16m -Xmx256m"), None);
    assert_eq!(
        heap_share("-Xms16m"),
        Some(HeapShare {
            max: 0.25,
            min: 0.5,
            max_ram_bytes: None
        })
    );
    assert_eq!(
        max("-XX:MaxRAMPercentage=50 -XX:MaxRAMPercentage=75.0"),
        Some(0.75)
    );
    assert_eq!(max("-XX:MaxRAMFraction=2"), Some(0.5));
    assert_eq!(
        heap_share("-XX:MinRAMPercentage=30 -XX:MaxRAM=1g"),
        Some(HeapShare {
            max: 0.25,
            min: 0.3,
            max_ram_bytes: Some(1 << 30)
        })
    );
    assert_eq!(
        heap_share("-XX:MinRAMFraction=4").map(|s| s.min),
        Some(0.25)
    );
    assert!(collector_given("-Xmx1g -XX:+UseG1GC"));
    assert!(collector_given("-XX:+UseZGC -XX:+ZGenerational"));
    assert!(!collector_given("-Xmx1g -XX:+UseStringDeduplication"));
    assert!(!collector_given("-XX:+UseG1GC -XX:-UseG1GC"));
    // The host's memory, not the limit, where container support is off.
    assert_eq!(heap_share("-XX:-UseContainerSupport"), None);
    assert!(heap_share("-XX:-UseContainerSupport -XX:+UseContainerSupport").is_some());
    assert_eq!(
        initial_heap("-Xms16m -XX:InitialHeapSize=1g"),
        Some(1 << 30)
    );
    assert_eq!(initial_heap("-Xmx1g"), None);
}

/// A percentage wins over a fraction, whichever comes last: HotSpot reads
/// `-XX:MaxRAMFraction` only where `-XX:MaxRAMPercentage` is not given
/// (OpenJDK 17, `-XX:MaxRAM=1g -XX:MaxRAMPercentage=75 -XX:MaxRAMFraction=2`
/// in either order: `MaxHeapSize` 768 MiB; `-XX:MaxRAM=200m
/// -XX:MinRAMPercentage=30 -XX:MinRAMFraction=4`: 60 MiB).
#[test]
fn a_ram_percentage_wins_over_a_fraction_whatever_the_order() {
    for args in [
        "-XX:MaxRAMPercentage=75 -XX:MaxRAMFraction=2",
        "-XX:MaxRAMFraction=2 -XX:MaxRAMPercentage=75",
    ] {
        assert_eq!(heap_share(args).map(|s| s.max), Some(0.75), "{args}");
    }
    for args in [
        "-XX:MinRAMPercentage=30 -XX:MinRAMFraction=4",
        "-XX:MinRAMFraction=4 -XX:MinRAMPercentage=30",
    ] {
        assert_eq!(heap_share(args).map(|s| s.min), Some(0.3), "{args}");
    }
    // A fraction alone counts; the last one given.
    let max = |args: &str| heap_share(args).map(|s| s.max);
    assert_eq!(max("-XX:MaxRAMFraction=8 -XX:MaxRAMFraction=2"), Some(0.5));
}

/// `-XX:MaxRAMPercentage=0` is taken as 0%, not the 25% default: the heap is
/// then the JVM's default maximum whatever the limit (OpenJDK 17,
/// `-XX:MaxRAMPercentage=0` with `-XX:MaxRAM=1g` or `4g`: `MaxHeapSize` 126
/// MiB), and no limit gives it more.
#[test]
fn a_zero_max_ram_percentage_is_taken() {
    let share = heap_share("-XX:MaxRAMPercentage=0").unwrap();
    assert_eq!(share.max, 0.0);
    assert_eq!(share.max_heap(1024.0 * 1048576.0), DEFAULT_MAX_HEAP);
    assert_eq!(share.max_heap(4096.0 * 1048576.0), DEFAULT_MAX_HEAP);
    // Past the default maximum no limit holds a heap; below it, 50% does.
    assert_eq!(share.limit_for(200.0 * 1048576.0), None);
    assert_eq!(
        share.limit_for(100.0 * 1048576.0),
        Some((200.0 * 1048576.0, 0.5))
    );
    assert_eq!(
        share.limit_for(DEFAULT_MAX_HEAP),
        Some((2.0 * DEFAULT_MAX_HEAP, 0.0))
    );
    // -XX:MinRAMPercentage=0 keeps the default (such a JVM does not start).
    assert_eq!(
        heap_share("-XX:MinRAMPercentage=0").map(|s| s.min),
        Some(0.5)
    );
}

/// The least limit that leaves room beside the heap's maximum the JVM takes
/// under it (never below -Xms): over shares, rooms, -Xms and starting points,
/// the limit found leaves the room, is no less than where it starts, and a
/// MiB less would not leave it (unless that is below the start).
#[test]
fn the_least_limit_leaving_room_beside_the_heap_is_found() {
    const MIB: f64 = 1048576.0;
    for (max, min) in [
        (0.25, 0.5),
        (0.75, 0.5),
        (0.95, 0.5),
        (0.0, 0.5),
        (0.25, 0.9),
        (0.6, 1.0),
    ] {
        let share = HeapShare {
            max,
            min,
            max_ram_bytes: None,
        };
        for room in [0.0, 10.0, 50.0, 130.0, 390.0] {
            for initial in [0.0, 64.0, 1024.0] {
                for from in [0.0, 100.0, 250.0, 780.0] {
                    let (room, initial, from) = (room * MIB, initial * MIB, from * MIB);
                    let fits = |l: f64| share.max_heap(l).max(initial) + room <= l + 1e-6;
                    let l = share.limit_leaving(room, initial, from).unwrap();
                    let case = format!("{max} {min} {room} {initial} {from}: {l}");
                    assert!(l >= from && fits(l), "{case}");
                    assert!(l - MIB < from || !fits(l - MIB), "{case}");
                }
            }
        }
    }
    let all = HeapShare {
        max: 1.0,
        min: 0.5,
        max_ram_bytes: None,
    };
    // At 100% only a limit small enough for its 50% share leaves room.
    assert_eq!(all.limit_leaving(200.0 * MIB, 0.0, 0.0), None);
    assert_eq!(all.limit_leaving(MIB, 0.0, 0.0), Some(2.0 * MIB));
    let ram = HeapShare {
        max_ram_bytes: Some(1 << 30),
        ..all
    };
    assert_eq!(ram.limit_leaving(0.0, 0.0, 0.0), None);
}

/// A JVM starting may not have written its arguments when its file is first
/// opened (seen in CI: a JVM read without `-Xms` or any share): they are looked
/// for again at the next reads, and kept once found.
#[test]
fn arguments_written_after_the_file_was_opened_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = perf_file(true, &G1);
    let p = write(dir.path(), "1", &bytes);
    let mut data = PerfData::open(&p).unwrap();
    let heap = data.read().unwrap().unwrap();
    assert_eq!((heap.max_heap_bytes, heap.heap_share), (None, None));
    // The same layout with the text entry renamed: both names end before the
    // data's offset, 40 bytes into the entry.
    let mut later = bytes.clone();
    let entry = HEADER;
    later[entry + 20..entry + 39].copy_from_slice(b"java.rt.vmArgs\0\0\0\0\0");
    later[entry + 40..entry + 53].copy_from_slice(b"-Xmx64m\0\0\0\0\0\0");
    std::fs::write(&p, &later).unwrap();
    let heap = data.read().unwrap().unwrap();
    assert_eq!(heap.max_heap_bytes, Some(64 << 20));
    assert_eq!(heap.heap_share, None);
}
