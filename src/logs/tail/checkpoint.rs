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
            k.path.display()
        ));
    }
    s
}

pub(super) fn parse(text: &str) -> Option<Vec<Known>> {
    let mut lines = text.lines();
    if lines.next()? != CHECKPOINT_HEADER {
        return None;
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
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
        let path = PathBuf::from(f.next().unwrap_or(""));
        out.push(Known {
            inode: (dev, ino),
            fingerprint,
            offset,
            path,
        });
    }
    Some(out)
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
        assert!(parse(&format!("{CHECKPOINT_HEADER}\n1 2 x - /p\n")).is_none());
    }
}
