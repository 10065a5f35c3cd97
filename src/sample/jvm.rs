//! A JVM's heap, read from its perf-data file: the figures `jstat` prints.
//!
//! A HotSpot JVM (OpenJDK and its builds, with `-XX:+UsePerfData`, the default)
//! publishes its counters in a memory-mapped file,
//! `/tmp/hsperfdata_<user>/<pid>`, the pid in the JVM's own pid namespace. From a
//! sidecar or a wrapper it is reached through the process' root:
//! `/proc/<pid>/root/tmp/hsperfdata_*/<nspid>`. Outrider reads:
//!
//! - the old generation's used bytes (`sun.gc.generation.1.space.0.used`) and
//!   its committed bytes (`sun.gc.generation.1.capacity`: Shenandoah publishes
//!   its space's capacity as the heap's maximum, the generation's as what it has
//!   committed), and once the largest it may
//!   grow to (`sun.gc.generation.1.maxCapacity`, fixed when the JVM starts: `-Xmx`
//!   under G1, the old generation's share of it under Parallel and Serial GC),
//!   where a leak in the heap ends in `OutOfMemoryError`;
//! - collections that can reclaim old objects: full collections
//!   (`sun.gc.collector.1.invocations`) plus, under G1, the pauses of its
//!   concurrent cycles (`sun.gc.collector.2.invocations`), after which mixed
//!   collections reclaim the old regions the cycle marked;
//! - young collections (`sun.gc.collector.0.invocations`);
//! - the young generation's committed bytes (`sun.gc.generation.0.capacity`,
//!   where published): with the old generation's, the whole heap's, which is how
//!   much of the JVM's RSS is its heap (G1 moves regions between the two, and
//!   Parallel GC resizes its young generation as it goes).
//!
//! The single-generation collectors publish their whole heap as generation 1
//! (OpenJDK 17, `jcmd PID PerfCounter.print`): Shenandoah ("Heap") counts every
//! cycle as collector 1 ("Shenandoah full") and has a collector 0 that never runs;
//! ZGC ("old") publishes only the pauses of its cycles, as collector 2 ("Z
//! concurrent cycle pauses"), and no collector 0 or 1: its young collections read
//! 0. Every cycle of either collects the whole heap. Generational ZGC (JDK 21 on,
//! the only ZGC from JDK 24; measured on Temurin 25) publishes its minor
//! collections as collector 0 and its major ones as collector 2, no collector 1,
//! the old generation's capacity as its used bytes and the rest of the heap's
//! capacity as the young generation's. ZGC's heap is shared memory: its
//! resident part is the JVM's `RssShmem`, read each tick for a ZGC heap.
//!
//! The file's layout is fixed once the JVM has started its collector: the entries
//! are found by name once ([`PerfData::open`]), and a tick reads the span that
//! holds the values with one `pread` (about 1.5 KiB). A file that is not a
//! perf-data file, a collector that publishes no generation 1 or no collection
//! that reclaims it, or a JVM started with `-XX:-UsePerfData` gives no heap
//! figures. How a figure is used: `analysis::heap`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::pid_hash::PidSet;
use super::process::{Identity, ProcEntry, ReadErrors};

/// A JVM's heap at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct JvmHeap {
    /// Bytes of live and not yet collected objects in the old generation.
    pub old_used_bytes: u64,
    /// Bytes committed to the old generation.
    pub old_capacity_bytes: u64,
    /// Bytes committed to the young generation; `None` where not published
    /// (ZGC of one generation, older traces).
    pub young_capacity_bytes: Option<u64>,
    /// The most the old generation may hold (`-Xmx` under G1; its share of it
    /// under Parallel and Serial GC); `None` where not published (older traces).
    pub old_max_bytes: Option<u64>,
    /// Full collections and concurrent-cycle pauses since the JVM started.
    pub old_collections: u64,
    /// Young collections since the JVM started.
    pub young_collections: u64,
    /// How many times the heap is mapped into the process, each mapping
    /// counted again in its RSS: 3 under ZGC of one generation (JDK 11-21; its
    /// colored pointers address one heap through three views), 1 under the
    /// others (0 in traces recorded before it was kept: read as 1).
    pub heap_mappings: u8,
    /// The JVM process's shared memory resident (`RssShmem` of its `status`),
    /// counted for each mapping: read only for a ZGC heap (shared memory, all
    /// of it heap); `None` otherwise or where unread.
    pub shmem_resident_bytes: Option<u64>,
    /// The heap's maximum where the JVM was given one (`-Xmx` or
    /// `-XX:MaxHeapSize`, on its command line or in `JAVA_TOOL_OPTIONS`: its
    /// `java.rt.vmArgs`, the last one given); `None` where the JVM sized its
    /// heap itself (a share of the memory it sees: it follows a container's
    /// limit) or in traces.
    pub max_heap_bytes: Option<u64>,
    /// Where the JVM sizes its heap itself (no `-Xmx`) from the memory it sees
    /// (a container's limit, where it has one): the shares its heap may take
    /// ([`HeapShare`]); `None` with `-Xmx`, with `-XX:-UseContainerSupport`
    /// (the limit does not bound it then), or in traces.
    pub heap_share: Option<HeapShare>,
    /// The heap's initial size where given (`-Xms`, `-XX:InitialHeapSize`):
    /// without `-Xmx` the heap's maximum is never below it; `None` otherwise.
    pub initial_heap_bytes: Option<u64>,
    /// Whether the JVM was given its collector (`-XX:+UseG1GC` and the like);
    /// where not, it picks one from the memory and CPUs it sees: Serial under
    /// 1792 MiB or 2 CPUs, G1 from there. `None` in traces.
    pub collector_given: Option<bool>,
    /// What else of its arguments changes what it sees when it picks its
    /// collector; `None` in traces.
    pub ergonomics: Option<Ergonomics>,
}

/// What a JVM's arguments change of the CPUs and memory it sees when it picks
/// its collector (HotSpot's `is_server_class_machine`: 2 CPUs and 1792 MiB).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Ergonomics {
    /// `-XX:ActiveProcessorCount=N`: the CPUs it counts, whatever its CPU
    /// limit (OpenJDK 17: `=2` under a 1-CPU quota picks G1, `=1` without a
    /// limit Serial).
    pub active_processor_count: Option<u32>,
    /// `-XX:-UseContainerSupport`: it sees the host's memory and CPUs, not
    /// its container's limits (OpenJDK 17 in a 1 GiB memory cgroup: G1).
    pub container_support_off: bool,
}

/// The shares of the memory it sees that a JVM sizing its heap itself gives its
/// heap (HotSpot's `Arguments::set_heap_size`): `min` of it where that is under
/// the JVM's default maximum heap ([`DEFAULT_MAX_HEAP`]: a small container),
/// else `max` of it, never under that default. Checked with `java
/// -XX:MaxRAM=M -XX:+PrintFlagsFinal -version` on OpenJDK 17 and Temurin 25:
/// 64 MiB of heap at 128m, 100 at 200m, 126 from 250m to 500m, 128 at 512m,
/// 256 at 1g.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HeapShare {
    /// `-XX:MaxRAMPercentage` (25% by default) or `-XX:MaxRAMFraction`.
    pub max: f64,
    /// `-XX:MinRAMPercentage` (50% by default) or `-XX:MinRAMFraction`.
    pub min: f64,
    /// `-XX:MaxRAM`: the memory the JVM sizes its heap from in place of its
    /// limit, above the limit as well as below (HotSpot takes it whenever it
    /// is given: in a 1 GiB memory cgroup `-XX:MaxRAM=4g` gave `MaxHeapSize`
    /// 1 GiB on OpenJDK 17 and Temurin 25). The heap's maximum then does not
    /// follow the limit ([`HeapShare::fixed_max`]).
    pub max_ram_bytes: Option<u64>,
}

/// The JVM's default maximum heap, 96 MiB scaled for 64-bit words (x 1.3):
/// the line between a small container's heap (`HeapShare::min` of it) and a
/// larger one's.
pub const DEFAULT_MAX_HEAP: f64 = 96.0 * 1.3 * 1048576.0;

impl HeapShare {
    /// The heap's maximum the JVM takes under a memory `limit` (from
    /// `-XX:MaxRAM` instead, where given).
    pub fn max_heap(&self, limit: f64) -> f64 {
        let seen = self.max_ram_bytes.map_or(limit, |r| r as f64);
        match self.min * seen {
            small if small < DEFAULT_MAX_HEAP => small,
            _ => (self.max * seen).max(DEFAULT_MAX_HEAP),
        }
    }

    /// The least limit, at or above `from`, under which the heap's maximum the
    /// JVM takes (never below `initial`, its `-Xms`: HotSpot raises the maximum
    /// to it) leaves `room` bytes beside it; `None` where none does (a share
    /// of 100% leaves none) or with `-XX:MaxRAM` (its maximum does not follow
    /// the limit). Under a small limit the heap is `min` of it, from
    /// `DEFAULT_MAX_HEAP / min` on `max` of it but never under the default
    /// maximum: each constraint is a least limit, taken in the small regime
    /// where that holds all of them, else in the large one.
    pub fn limit_leaving(&self, room: f64, initial: f64, from: f64) -> Option<f64> {
        if self.max_ram_bytes.is_some() {
            return None;
        }
        // A heap at `share` of the limit leaves `room` from this limit on.
        let beside = |share: f64| match room > 0.0 {
            false => 0.0,
            true if share < 1.0 => room / (1.0 - share),
            true => f64::INFINITY,
        };
        let floor = from.max(initial + room);
        let large_from = DEFAULT_MAX_HEAP / self.min;
        let small = floor.max(beside(self.min));
        let limit = match small < large_from {
            true => small,
            false => floor
                .max(large_from)
                .max(DEFAULT_MAX_HEAP + room)
                .max(beside(self.max)),
        };
        limit.is_finite().then_some(limit)
    }

    /// Where `-XX:MaxRAM` is given, the heap's maximum whatever the limit, and
    /// the share of `-XX:MaxRAM` that gives it.
    pub fn fixed_max(&self) -> Option<(f64, f64)> {
        let ram = self.max_ram_bytes? as f64;
        let of = match self.min * ram < DEFAULT_MAX_HEAP {
            true => self.min,
            false => self.max,
        };
        Some((self.max_heap(ram), of))
    }

    /// The least limit under which the heap's maximum holds `heap` bytes, and
    /// the share of it that does; `None` where no limit does (at 0% the heap
    /// never passes the JVM's default maximum) or the maximum does not follow
    /// the limit (`-XX:MaxRAM`: [`HeapShare::fixed_max`]).
    pub fn limit_for(&self, heap: f64) -> Option<(f64, f64)> {
        let (limit, share) = if heap < DEFAULT_MAX_HEAP {
            (heap / self.min, self.min)
        } else {
            // At the default maximum from the small limits' end; past it only
            // by its share.
            let past = match heap > DEFAULT_MAX_HEAP {
                true => heap / self.max,
                false => 0.0,
            };
            (past.max(DEFAULT_MAX_HEAP / self.min), self.max)
        };
        (limit.is_finite() && self.max_ram_bytes.is_none()).then_some((limit, share))
    }
}

/// ZGC of one generation maps its heap three times ([`JvmHeap::heap_mappings`]).
const ZGC_MAPPINGS: u8 = 3;

impl JvmHeap {
    /// Bytes of `rss` that are the heap's extra mappings. Under ZGC of one
    /// generation, (m - 1)/m of its resident shared memory, where read (a page
    /// counts in a view only once touched through it: a churning 64 MiB heap had
    /// 67 MiB resident for 28 MiB committed); else m - 1 times its committed
    /// bytes (traces recorded without it). Never more than leaves `rss` divided
    /// by the mappings.
    pub fn counted_again_bytes(&self, rss: u64) -> u64 {
        let m = u64::from(self.heap_mappings.max(1));
        let again = match self.shmem_resident_bytes {
            Some(shmem) => shmem / m * (m - 1),
            None => (m - 1) * self.old_capacity_bytes,
        };
        again.min(rss - rss / m)
    }

    /// `rss` with the heap of `heap`, if any, counted once.
    pub fn counted_once(heap: Option<&JvmHeap>, rss: u64) -> u64 {
        rss - heap.map_or(0, |j| j.counted_again_bytes(rss))
    }

    /// Bytes committed to the whole heap: both generations where the young
    /// one's are published, else the old one's (the whole heap under a
    /// collector of one generation).
    pub fn committed_bytes(&self) -> u64 {
        self.old_capacity_bytes + self.young_capacity_bytes.unwrap_or(0)
    }

    /// Bytes of RSS that are the heap's, in all its mappings: under ZGC its
    /// resident shared memory (the heap is all of it), else its committed bytes.
    /// `None` for ZGC of one generation without it (three times the committed
    /// bytes overstates a heap not yet touched through every view, and by an
    /// amount that shrinks as it is). What is left of RSS is the JVM's memory
    /// outside its heap.
    pub fn heap_in_rss_bytes(&self) -> Option<u64> {
        match (self.shmem_resident_bytes, self.heap_mappings) {
            (Some(shmem), _) => Some(shmem),
            (None, 0 | 1) => Some(self.committed_bytes()),
            (None, _) => None,
        }
    }
}

/// The first bytes of every perf-data file, in the byte order it was written in.
const MAGIC: u32 = 0xcafe_c0c0;
/// Header: magic (4), byte order (1), major (1), minor (1), accessible (1), used
/// (4), overflow (4), modification time stamp (8), entry offset (4), entries (4).
const HEADER: usize = 32;
/// Largest file read at [`PerfData::open`]: the JVM's default is 32 KiB
/// (`-XX:PerfDataMemorySize`).
const MAX_FILE: u64 = 1 << 20;

const OLD_USED: &str = "sun.gc.generation.1.space.0.used";
const OLD_CAPACITY: &str = "sun.gc.generation.1.capacity";
const YOUNG_CAPACITY: &str = "sun.gc.generation.0.capacity";
const OLD_MAX: &str = "sun.gc.generation.1.maxCapacity";
const FULL: &str = "sun.gc.collector.1.invocations";
const CONCURRENT: &str = "sun.gc.collector.2.invocations";
const YOUNG: &str = "sun.gc.collector.0.invocations";
/// The JVM's own arguments as it read them, `JAVA_TOOL_OPTIONS` first.
const VM_ARGS: &str = "java.rt.vmArgs";

/// An open perf-data file and where its values are.
#[derive(Debug)]
pub struct PerfData {
    file: File,
    little: bool,
    /// Offsets in the file of: old used and old capacity.
    at: [u64; 2],
    /// Offsets of the full-collection, concurrent-cycle and young-collection
    /// counts, where the collector publishes them (at least one of the first two).
    full: Option<u64>,
    concurrent: Option<u64>,
    young: Option<u64>,
    /// Where the old generation's maximum is, where published.
    old_max: Option<u64>,
    /// Where the young generation's committed bytes are, where published.
    young_capacity: Option<u64>,
    /// [`JvmHeap::heap_mappings`]: fixed by the collector's layout.
    heap_mappings: u8,
    /// The collector is ZGC (its heap is shared memory): fixed by its layout.
    zgc: bool,
    /// The JVM's arguments as its heap's sizing reads them, once found: a JVM
    /// starting may not have written them when the file is first opened, so
    /// they are looked for again at up to [`ARGS_TRIES`] reads.
    args: Option<Args>,
    args_tries: u32,
    /// The span read each tick: its start and length.
    span: (u64, usize),
    buf: Vec<u8>,
    /// The JVM has marked the file ready (it never takes that back).
    accessible: bool,
}

/// Why a file gives no heap figures.
#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    /// Not a perf-data file, or one without the counters Outrider reads.
    Layout(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => e.fmt(f),
            OpenError::Layout(s) => f.write_str(s),
        }
    }
}

impl PerfData {
    /// Opens `path` and finds the counters in it.
    pub fn open(path: &Path) -> Result<PerfData, OpenError> {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        // Under another container's root: never follow a symlink out of it, and
        // never block on a FIFO put in the file's place.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
            .open(path)
            .map_err(OpenError::Io)?;
        let meta = file.metadata().map_err(OpenError::Io)?;
        if !meta.is_file() {
            return Err(OpenError::Layout("not a regular file".into()));
        }
        let len = meta.len().min(MAX_FILE);
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).map_err(OpenError::Io)?;
        let (little, entries, texts) = entries(&bytes).map_err(OpenError::Layout)?;
        let find = |name: &str| entries.iter().find(|e| e.0 == name.as_bytes()).map(|e| e.1);
        let args = vm_args(&texts);
        let missing = |name: &str| OpenError::Layout(format!("no {name}"));
        let at = [
            find(OLD_USED).ok_or_else(|| missing(OLD_USED))?,
            find(OLD_CAPACITY).ok_or_else(|| missing(OLD_CAPACITY))?,
        ];
        let (full, concurrent, young) = (find(FULL), find(CONCURRENT), find(YOUNG));
        if full.is_none() && concurrent.is_none() {
            return Err(missing(&format!("{FULL} nor {CONCURRENT}")));
        }
        let (old_max, young_capacity) = (find(OLD_MAX), find(YOUNG_CAPACITY));
        // ZGC publishes its cycles' pauses as collector 2 and no collector 1
        // (G1, which has a collector 2, has one): of one generation only those;
        // generational ZGC (JDK 21 on, no multi-mapping) its minor ones as
        // collector 0.
        let zgc = full.is_none() && concurrent.is_some();
        let heap_mappings = if zgc && young.is_none() {
            ZGC_MAPPINGS
        } else {
            1
        };
        let all = at.into_iter().chain(
            [full, concurrent, young, old_max, young_capacity]
                .into_iter()
                .flatten(),
        );
        let start = all.clone().min().unwrap_or(0);
        let end = all.max().unwrap_or(0) + 8;
        Ok(PerfData {
            file,
            little,
            at,
            full,
            concurrent,
            young,
            old_max,
            young_capacity,
            heap_mappings,
            zgc,
            args,
            args_tries: 0,
            span: (start, (end - start) as usize),
            buf: Vec::new(),
            accessible: false,
        })
    }

    /// The counters now: one read of the span that holds them (the
    /// collectors' entries sit apart from the generations' under Parallel GC:
    /// about 12 KiB in all). `None` while the JVM has not yet marked the file
    /// accessible (it is starting; looked at again each read until it has).
    pub fn read(&mut self) -> io::Result<Option<JvmHeap>> {
        let (start, len) = self.span;
        if !self.accessible {
            let mut head = [0u8; HEADER];
            self.file.read_exact_at(&mut head, 0)?;
            if head[7] == 0 {
                return Ok(None);
            }
            self.accessible = true;
        }
        if self.args.is_none() && self.args_tries < ARGS_TRIES {
            self.args_tries += 1;
            // A failed look is tried again: it must not cost the heap's figures.
            self.args = self.read_args().ok().flatten();
        }
        self.buf.resize(len, 0);
        let buf = &mut self.buf[..];
        self.file.read_exact_at(buf, start)?;
        let value = |at: u64| {
            let i = (at - start) as usize;
            let b: [u8; 8] = buf[i..i + 8].try_into().unwrap_or([0; 8]);
            let v = if self.little {
                i64::from_le_bytes(b)
            } else {
                i64::from_be_bytes(b)
            };
            v.max(0) as u64
        };
        Ok(Some(JvmHeap {
            old_used_bytes: value(self.at[0]),
            old_capacity_bytes: value(self.at[1]),
            young_capacity_bytes: self.young_capacity.map(value),
            old_max_bytes: self.old_max.map(value).filter(|&v| v > 0),
            old_collections: self.full.map(value).unwrap_or(0)
                + self.concurrent.map(value).unwrap_or(0),
            young_collections: self.young.map(value).unwrap_or(0),
            heap_mappings: self.heap_mappings,
            shmem_resident_bytes: None,
            max_heap_bytes: self.args.and_then(|a| a.max_heap),
            heap_share: self.args.and_then(|a| a.share),
            initial_heap_bytes: self.args.and_then(|a| a.initial),
            collector_given: self.args.map(|a| a.collector),
            ergonomics: self.args.map(|a| a.ergonomics),
        }))
    }
}

/// Reads that look for the JVM's arguments again if the file did not hold them
/// when opened (one read of the whole file, at most 32 KiB, each).
const ARGS_TRIES: u32 = 10;

/// What the JVM's arguments say of its heap's size.
#[derive(Debug, Clone, Copy)]
struct Args {
    max_heap: Option<u64>,
    share: Option<HeapShare>,
    initial: Option<u64>,
    collector: bool,
    ergonomics: Ergonomics,
}

/// The JVM's arguments (`java.rt.vmArgs`) among a file's text entries.
fn vm_args(texts: &[Text<'_>]) -> Option<Args> {
    let args = texts.iter().find(|e| e.0 == VM_ARGS.as_bytes())?;
    let args = String::from_utf8_lossy(args.1);
    Some(Args {
        max_heap: max_heap(&args),
        share: heap_share(&args),
        initial: initial_heap(&args),
        collector: collector_given(&args),
        ergonomics: ergonomics(&args),
    })
}

impl PerfData {
    /// The whole file read again for the JVM's arguments.
    fn read_args(&self) -> io::Result<Option<Args>> {
        let len = self.file.metadata()?.len().min(MAX_FILE);
        let mut bytes = vec![0u8; len as usize];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(entries(&bytes)
            .ok()
            .and_then(|(_, _, texts)| vm_args(&texts)))
    }
}

/// A `long` entry of a perf-data file: its name and the offset of its value.
type Long<'a> = (&'a [u8], u64);
/// A text entry (a `byte` vector): its name and its text up to its first NUL.
type Text<'a> = (&'a [u8], &'a [u8]);

/// The heap's maximum an argument list sets (`-Xmx256m`, `-XX:MaxHeapSize=1g`,
/// bytes without a suffix), the last one given as the JVM takes it; `None`
/// where none does.
pub fn max_heap(args: &str) -> Option<u64> {
    last_size(args, "-Xmx", "-XX:MaxHeapSize=")
}

/// The heap's initial size an argument list sets (`-Xms`,
/// `-XX:InitialHeapSize=`), the last one given.
pub fn initial_heap(args: &str) -> Option<u64> {
    last_size(args, "-Xms", "-XX:InitialHeapSize=")
}

/// The last size given by `flag` (`-Xmx256m`) or `long` (`-XX:MaxHeapSize=1g`),
/// in the units the JVM takes.
fn last_size(args: &str, flag: &str, long: &str) -> Option<u64> {
    args.split_whitespace().rev().find_map(|a| {
        let size = a.strip_prefix(flag).or_else(|| a.strip_prefix(long))?;
        let (digits, unit) = match size.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => size.split_at(i),
            None => (size, ""),
        };
        let shift = match unit {
            "" => 0,
            "k" | "K" => 10,
            "m" | "M" => 20,
            "g" | "G" => 30,
            "t" | "T" => 40,
            _ => return None,
        };
        digits.parse::<u64>().ok()?.checked_mul(1 << shift)
    })
}

/// The shares of the memory it sees a JVM's heap may take where an argument
/// list sets no maximum: the last `-XX:MaxRAMPercentage` (or the older
/// `-XX:MaxRAMFraction`, its inverse), 25% where neither is given (the JVM's
/// default from JDK 10), and likewise `-XX:MinRAMPercentage`, 50%; with
/// `-XX:MaxRAM`. `None` where `-Xmx` or `-XX:MaxHeapSize` is given, or
/// `-XX:-UseContainerSupport` (the JVM then sizes its heap from the host's
/// memory, whatever the container's limit).
pub fn heap_share(args: &str) -> Option<HeapShare> {
    if max_heap(args).is_some() || ergonomics(args).container_support_off {
        return None;
    }
    Some(HeapShare {
        // 0% is taken: the heap is then the JVM's default maximum. A JVM given
        // -XX:MinRAMPercentage=0 does not start.
        max: ram_share(args, "Max").unwrap_or(0.25),
        min: ram_share(args, "Min").filter(|s| *s > 0.0).unwrap_or(0.5),
        max_ram_bytes: last_size(args, "-XX:MaxRAM=", "-XX:MaxRAM="),
    })
}

/// What an argument list changes of what the JVM sees: the last
/// `-XX:ActiveProcessorCount` over 0 (HotSpot's default, -1, counts the CPUs),
/// the last `-XX:+UseContainerSupport` or `-XX:-UseContainerSupport`.
pub fn ergonomics(args: &str) -> Ergonomics {
    let off = args.split_whitespace().rev().find_map(|a| match a {
        "-XX:+UseContainerSupport" => Some(false),
        "-XX:-UseContainerSupport" => Some(true),
        _ => None,
    });
    let count = args.split_whitespace().rev().find_map(|a| {
        a.strip_prefix("-XX:ActiveProcessorCount=")?
            .parse::<i64>()
            .ok()
    });
    Ergonomics {
        active_processor_count: count.and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0),
        container_support_off: off == Some(true),
    }
}

/// Whether an argument list chooses the collector (`-XX:+UseSerialGC`,
/// `-XX:+UseG1GC`, ...: the last `+` or `-` of each counts).
pub fn collector_given(args: &str) -> bool {
    const COLLECTORS: [&str; 7] = [
        "Serial",
        "Parallel",
        "G1",
        "Z",
        "Shenandoah",
        "Epsilon",
        "ConcMarkSweep",
    ];
    COLLECTORS.iter().any(|c| {
        let (on, off) = (format!("-XX:+Use{c}GC"), format!("-XX:-Use{c}GC"));
        args.split_whitespace()
            .rev()
            .find(|a| **a == on || **a == off)
            == Some(on.as_str())
    })
}

/// The last `-XX:{which}RAMPercentage` as a share, else the last
/// `-XX:{which}RAMFraction` (its inverse), where it is one (at most 1):
/// HotSpot reads a fraction only where the percentage is not given, whichever
/// comes last (OpenJDK 17 in a 1 GiB memory cgroup, `-XX:MaxRAMPercentage=75
/// -XX:MaxRAMFraction=2` in either order: `MaxHeapSize` 768 MiB).
fn ram_share(args: &str, which: &str) -> Option<f64> {
    let last = |flag: String| {
        args.split_whitespace()
            .rev()
            .find_map(|a| a.strip_prefix(flag.as_str())?.parse::<f64>().ok())
    };
    let share = match last(format!("-XX:{which}RAMPercentage=")) {
        Some(p) => p / 100.0,
        None => 1.0 / last(format!("-XX:{which}RAMFraction="))?,
    };
    (0.0..=1.0).contains(&share).then_some(share)
}

/// The byte order (little-endian or not), the 8-byte `long` entries and the
/// text entries of a perf-data file.
fn entries(b: &[u8]) -> Result<(bool, Vec<Long<'_>>, Vec<Text<'_>>), String> {
    if b.len() < HEADER {
        return Err("shorter than a perf-data header".into());
    }
    let little = match b[4] {
        0 => false,
        1 => true,
        o => return Err(format!("byte order {o} is neither 0 nor 1")),
    };
    let u32_at = |i: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    if u32::from_be_bytes([b[0], b[1], b[2], b[3]]) != MAGIC {
        return Err("not a perf-data file (magic)".into());
    }
    let (first, count) = (
        u32_at(24).unwrap_or(0) as usize,
        u32_at(28).unwrap_or(0) as usize,
    );
    let mut out = Vec::new();
    let mut texts = Vec::new();
    let mut off = first;
    for _ in 0..count {
        // Entry: length (4), name offset (4), vector length (4), type (1), flags
        // (1), units (1), variability (1), data offset (4); offsets are from the
        // entry's start.
        // The JVM counts an entry before it writes it: a zero-length or cut
        // entry is one being made, and the entries before it stand.
        let (Some(len), Some(name_at), Some(vector), Some(data_at)) = (
            u32_at(off),
            u32_at(off + 4),
            u32_at(off + 8),
            u32_at(off + 16),
        ) else {
            break;
        };
        if len < 20 {
            break;
        }
        let kind = b.get(off + 12).copied();
        let name_start = off + name_at as usize;
        let name = b
            .get(name_start..)
            .and_then(|rest| rest.split(|&c| c == 0).next())
            .ok_or_else(|| format!("entry at {off} has its name past the file"))?;
        let data = off + data_at as usize;
        if vector == 0 && kind == Some(b'J') && data + 8 <= b.len() {
            out.push((name, data as u64));
        } else if vector > 0 && kind == Some(b'B') {
            if let Some(text) = b.get(data..data.saturating_add(vector as usize)) {
                texts.push((name, text.split(|&c| c == 0).next().unwrap_or(text)));
            }
        }
        off = match off.checked_add(len as usize) {
            Some(next) => next,
            None => break,
        };
    }
    Ok((little, out, texts))
}

/// How long a group whose processes have no perf-data file goes before they are
/// looked at again: a group that is not a JVM costs one directory listing per
/// this interval.
pub const SEARCH_EVERY: Duration = Duration::from_secs(30);
/// How soon a process named `java` without a file yet is looked at again, for its
/// first [`EARLY_SEARCHES`] searches: a JVM creates its file as it starts, within
/// a second or two of its `exec`.
pub const SEARCH_EARLY: Duration = Duration::from_secs(1);
pub const EARLY_SEARCHES: u32 = 20;

/// The JVM each group's heap is read from, found once and kept while it lives.
#[derive(Debug, Default)]
pub struct JvmHeaps {
    groups: Vec<Watch>,
}

#[derive(Debug, Default)]
struct Watch {
    /// The JVM read and its open file.
    jvm: Option<(Identity, PerfData)>,
    /// When the group's processes were last searched for a perf-data file.
    searched: Option<Instant>,
    /// Searches in a row that found a `java` without a file.
    early: u32,
}

impl JvmHeaps {
    /// Group `g`'s heap now. `candidates` are its processes, the main one first:
    /// the first whose perf-data file opens is the group's JVM (a wrapper script's
    /// `java` child as well as `java` itself), followed until it exits.
    pub fn heap<'a>(
        &mut self,
        g: usize,
        proc_root: &Path,
        candidates: impl Iterator<Item = &'a ProcEntry>,
        alive: &PidSet<Identity>,
        errors: &mut ReadErrors,
    ) -> Option<JvmHeap> {
        if self.groups.len() <= g {
            self.groups.resize_with(g + 1, Watch::default);
        }
        let w = &mut self.groups[g];
        if w.jvm.as_ref().is_some_and(|(id, _)| !alive.contains(id)) {
            *w = Watch::default();
        }
        let every = if w.early > 0 && w.early <= EARLY_SEARCHES {
            SEARCH_EARLY
        } else {
            SEARCH_EVERY
        };
        if w.jvm.is_none() && w.searched.is_none_or(|at| at.elapsed() >= every) {
            w.searched = Some(Instant::now());
            let mut java = false;
            let candidates = candidates.inspect(|e| java |= &*e.comm == "java");
            w.jvm = search(proc_root, candidates, errors);
            w.early = if w.jvm.is_none() && java {
                w.early + 1
            } else {
                0
            };
        }
        let (id, data) = w.jvm.as_mut()?;
        let zgc = data.zgc;
        match data.read() {
            Ok(Some(mut heap)) if zgc => {
                heap.shmem_resident_bytes = shmem_resident(proc_root, id.pid);
                Some(heap)
            }
            Ok(heap) => heap,
            Err(e) => {
                errors.record("jvm", &format!("perf data: {e}"));
                w.jvm = None;
                None
            }
        }
    }
}

/// `RssShmem` of process `pid`'s `status`, in bytes; `None` when unread.
fn shmem_resident(proc_root: &Path, pid: i32) -> Option<u64> {
    let text = std::fs::read(proc_root.join(pid.to_string()).join("status")).ok()?;
    let at = memchr::memmem::find(&text, b"\nRssShmem:")? + b"\nRssShmem:".len();
    let line = text[at..].split(|&b| b == b'\n').next()?;
    let kib: u64 = std::str::from_utf8(line)
        .ok()?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The first of `candidates` (at most [`CANDIDATES`]) with a perf-data file that
/// opens, and the file.
fn search<'a>(
    proc_root: &Path,
    candidates: impl Iterator<Item = &'a ProcEntry>,
    errors: &mut ReadErrors,
) -> Option<(Identity, PerfData)> {
    for e in candidates.take(CANDIDATES) {
        let path = match find(proc_root, e.pid, nspid(proc_root, e.pid).unwrap_or(e.pid)) {
            // The process' own file, mapped by it: a file left in a /tmp that
            // outlived a killed JVM may carry a new process' pid, and a wrapper
            // script maps none.
            Ok(Some(path)) if maps(proc_root, e.pid, &path) => path,
            Ok(Some(_)) => continue,
            Ok(None) => continue,
            // Counted for a JVM only: any other app may have a /tmp Outrider
            // cannot list, and nothing of it is missed.
            Err(err) => {
                if &*e.comm == "java" {
                    errors.record("jvm", &format!("/proc/{}/root/tmp: {err}", e.pid));
                }
                continue;
            }
        };
        match PerfData::open(&path) {
            Ok(data) => return Some((e.identity(), data)),
            Err(OpenError::Io(err)) => errors.record("jvm", &format!("{}: {err}", path.display())),
            // A collector that publishes other counters (ZGC, Shenandoah) is not
            // a failed read.
            Err(OpenError::Layout(why)) => {
                tracing::debug!(path = %path.display(), why, "no heap figures in this perf-data file")
            }
        }
    }
    None
}

/// Whether process `pid` maps the perf-data file `path` (found under its root):
/// a line of its `maps` ending in the file's last two components,
/// `hsperfdata_<user>/<nspid>`.
fn maps(proc_root: &Path, pid: i32, path: &Path) -> bool {
    let mut tail: Vec<&std::ffi::OsStr> = path.iter().rev().take(2).collect();
    tail.reverse();
    let needle = [tail.first(), tail.get(1)]
        .iter()
        .flatten()
        .map(|c| c.as_encoded_bytes())
        .collect::<Vec<_>>()
        .join(&b'/');
    let needle = [b"/".as_slice(), &needle, b"\n"].concat();
    std::fs::read(proc_root.join(pid.to_string()).join("maps"))
        .is_ok_and(|m| memchr::memmem::find(&m, &needle).is_some())
}

/// How many of a group's processes are looked at for a perf-data file: the main
/// one and the first others named `java`.
const CANDIDATES: usize = 4;

/// The pid of `pid` in its own (innermost) pid namespace: the last field of
/// `NSpid:` in its `status`.
fn nspid(proc_root: &Path, pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// The perf-data file of process `pid` (whose pid in its own namespace is `nspid`)
/// under `proc_root`, if it has one: `<proc_root>/<pid>/root/tmp/hsperfdata_*/<nspid>`.
/// An error when its `/tmp` cannot be listed (another user's process without
/// `CAP_SYS_PTRACE`: the kernel's ptrace check on `root`); none when it has none.
pub fn find(proc_root: &Path, pid: i32, nspid: i32) -> io::Result<Option<PathBuf>> {
    let tmp = proc_root.join(pid.to_string()).join("root/tmp");
    let name = nspid.to_string();
    let dirs = match std::fs::read_dir(&tmp) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(dirs
        .flatten()
        .filter(|d| d.file_name().as_encoded_bytes().starts_with(b"hsperfdata_"))
        // Not through a symlink, which would resolve against Outrider's root.
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .map(|d| d.path().join(&name))
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())))
}

#[cfg(test)]
mod tests;
