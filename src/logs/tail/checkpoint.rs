//! The offset checkpoint: one line per file, written atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::scan::Inode;

/// An offset kept for a file not open now (from the checkpoint, or let go while it
/// still existed).
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub inode: Inode,
    pub fingerprint: Vec<u8>,
    pub offset: u64,
    pub path: PathBuf,
}

const CHECKPOINT_HEADER: &str = "outrider-tail-checkpoint 1";

/// One line per file: `dev ino offset fingerprint-hex path` (path last: it may hold
/// spaces; it is only a hint for finding a file renamed while we were stopped).
pub(super) fn render(entries: impl Iterator<Item = Known>) -> String {
    let mut s = String::from(CHECKPOINT_HEADER);
    s.push('\n');
    for k in entries {
        let hex: String = k.fingerprint.iter().map(|b| format!("{b:02x}")).collect();
        let fp = if hex.is_empty() { "-".to_string() } else { hex };
        s.push_str(&format!(
            "{} {} {} {} {}\n",
            k.inode.0,
            k.inode.1,
            k.offset,
            fp,
            escape(&k.path.display().to_string())
        ));
    }
    s
}

pub(super) fn parse(text: &str) -> Option<Vec<Known>> {
    let mut lines = text.lines();
    if lines.next()? != CHECKPOINT_HEADER {
        return None;
    }
    // A line that is not an entry is skipped, not the whole file: one bad line
    // (a file name with a newline, before names were escaped) cost every
    // file's place at every restart.
    Some(lines.filter(|l| !l.is_empty()).filter_map(entry).collect())
}

/// One checkpoint line: `dev ino offset fingerprint path`.
fn entry(line: &str) -> Option<Known> {
    let mut f = line.splitn(5, ' ');
    let dev = f.next()?.parse().ok()?;
    let ino = f.next()?.parse().ok()?;
    let offset = f.next()?.parse().ok()?;
    let hex = f.next()?;
    let fingerprint = if hex == "-" {
        Vec::new()
    } else {
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?
    };
    let path = PathBuf::from(unescape(f.next().unwrap_or("")));
    Some(Known {
        inode: (dev, ino),
        fingerprint,
        offset,
        path,
    })
}

/// A file name on one line: `\` and line breaks escaped (a name may hold them).
fn escape(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Whether `path` is the checkpoint `c` or its temp file, by name and, for the
/// same file name, by the directory it is in (a `state_dir` reached through a
/// symlink names it otherwise: followed, its own writes were counted without
/// end).
pub(super) fn is_ours(path: &Path, c: &Path) -> bool {
    let temp = temp_path(c);
    if path == c || path == temp {
        return true;
    }
    let named = path
        .file_name()
        .is_some_and(|n| Some(n) == c.file_name() || Some(n) == temp.file_name());
    let dir_id = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p.parent()?).ok()?;
        Some((m.dev(), m.ino()))
    };
    named && dir_id(path).is_some_and(|d| Some(d) == dir_id(c))
}

/// Where the next checkpoint is written before it is renamed over `path`.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Temp file in the same directory, fsync, rename: a reader sees the old or the new
/// checkpoint, never half of one.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename durable; not fatal where directories cannot be synced.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let entries = vec![
            Known {
                inode: (2049, 77),
                fingerprint: b"a\x00b".to_vec(),
                offset: 12,
                path: PathBuf::from("/var/log/my app/a.log"),
            },
            Known {
                inode: (1, 2),
                fingerprint: Vec::new(),
                offset: 0,
                path: PathBuf::from("/x"),
            },
        ];
        let text = render(entries.clone().into_iter());
        let back = parse(&text).expect("parses");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].inode, (2049, 77));
        assert_eq!(back[0].fingerprint, b"a\x00b");
        assert_eq!(back[0].offset, 12);
        assert_eq!(back[0].path, PathBuf::from("/var/log/my app/a.log"));
        assert!(back[1].fingerprint.is_empty());
        assert!(parse("something else\n").is_none());
    }

    /// A file name holding a line break (any name a glob matches may) was
    /// written raw, split its entry in two, and the whole checkpoint was
    /// rejected at every restart from then on (review: 5 error lines written
    /// while Outrider was down never counted). Names are escaped; a line that is
    /// not an entry costs only itself.
    #[test]
    fn a_name_with_a_line_break_keeps_every_entry() {
        let known = |ino, path: &str| Known {
            inode: (1, ino),
            fingerprint: b"x".to_vec(),
            offset: 5,
            path: PathBuf::from(path),
        };
        let entries = vec![
            known(1, "/logs/evil\nname\\.log\r"),
            known(2, "/logs/app.log"),
        ];
        let text = render(entries.into_iter());
        assert_eq!(text.lines().count(), 3, "{text}");
        let back = parse(&text).expect("parses");
        assert_eq!(back[0].path, PathBuf::from("/logs/evil\nname\\.log\r"));
        assert_eq!(back[1].path, PathBuf::from("/logs/app.log"));
        // As an older Outrider wrote such a name: its entry keeps the name's
        // first part (a hint: the file is found by inode and fingerprint), the
        // rest is no entry and is skipped, and every other entry stands.
        let old =
            format!("{CHECKPOINT_HEADER}\n1 1 5 78 /logs/evil\nname.log\n1 2 5 78 /logs/app.log\n");
        let back = parse(&old).expect("parses");
        let inodes: Vec<_> = back.iter().map(|k| k.inode).collect();
        assert_eq!(inodes, [(1, 1), (1, 2)]);
    }
}
