//! Parsers of the /proc files a tick reads: `stat`, `status`, `schedstat`,
//! `children` and `limits`.

use super::{ProcEntry, PF_EXITING, PF_KTHREAD};

/// The pids of a `children` file: `"12 345 "`.
pub(super) fn parse_children(text: &[u8]) -> impl Iterator<Item = i32> + '_ {
    text.split(|b| b.is_ascii_whitespace())
        .filter_map(|w| std::str::from_utf8(w).ok()?.parse().ok())
}

/// `pid (comm) S ppid …`: comm may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(pid: i32, text: &[u8]) -> Option<ProcEntry> {
    let open = memchr::memchr(b'(', text)?;
    let close = memchr::memrchr(b')', text)?;
    let comm = String::from_utf8_lossy(text.get(open + 1..close)?).into();
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let mut field = |n: usize| -> Option<&str> { f.nth(n) };
    // Positions after comm: 0 state, 1 ppid, 6 flags, 11 utime, 12 stime,
    // 17 num_threads, 19 starttime, 20 vsize, 21 rss.
    let zombie = matches!(field(0)?, "Z" | "X");
    let ppid = field(0)?.parse().ok()?;
    let flags: u32 = field(4)?.parse().ok()?;
    let user_ticks = field(4)?.parse().ok()?;
    let system_ticks = field(0)?.parse().ok()?;
    let threads = field(4)?.parse().ok()?;
    let start_ticks = field(1)?.parse().ok()?;
    let vsize_bytes = field(0)?.parse().ok()?;
    let rss_pages = field(0)?.parse::<i64>().ok()?.max(0) as u64;
    Some(ProcEntry {
        pid,
        ppid,
        start_ticks,
        comm,
        kernel_thread: flags & PF_KTHREAD != 0,
        // An exiting process reads 0 resident bytes before it turns `Z`: a row
        // of it would be a fall to nothing just before it is gone.
        zombie: zombie || flags & PF_EXITING != 0,
        user_ticks,
        system_ticks,
        rss_pages,
        vsize_bytes,
        threads,
    })
}

/// The fields of `status` Outrider uses.
#[derive(Debug, Default, PartialEq)]
pub struct StatusFields {
    pub swap_bytes: Option<u64>,
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
}

pub fn parse_status(text: &[u8]) -> StatusFields {
    StatusFields {
        swap_bytes: keyed_value(text, b"VmSwap:").map(|kb| kb * 1024),
        voluntary_switches: keyed_value(text, b"voluntary_ctxt_switches:"),
        involuntary_switches: keyed_value(text, b"nonvoluntary_ctxt_switches:"),
    }
}

/// The number after `key` at the start of a line (`key   123 kB`).
pub(super) fn keyed_value(text: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        if let Some(rest) = line.strip_prefix(key) {
            let s = std::str::from_utf8(rest).ok()?;
            return s.split_ascii_whitespace().next()?.parse().ok();
        }
        at = end + 1;
    }
    None
}

/// `sum_exec_runtime run_delay timeslices`: the second number.
pub fn parse_run_delay(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `Max open files   1024   1048576   files`: the soft limit; `Some(None)` when
/// unlimited.
pub fn parse_max_open_files(text: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}
