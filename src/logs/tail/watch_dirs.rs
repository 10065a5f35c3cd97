//! inotify for promptness: which directories to watch, and the watcher. The poll in
//! [`super::Tailer::run`] does not depend on any of this.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

/// inotify watches on the directories the pattern can match in. Best effort: where
/// inotify is missing or out of watches, the poll does the work.
pub(super) struct Watches {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: HashSet<PathBuf>,
}

impl Watches {
    pub(super) fn new(wake: Arc<Notify>, enabled: bool) -> Watches {
        if !enabled {
            return Watches {
                watcher: None,
                dirs: HashSet::new(),
            };
        }
        // Any event (or error, such as a queue overflow) only wakes a pass: the pass
        // finds out what changed by looking.
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            wake.notify_one();
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "no file change notifications; following logs by polling alone");
                None
            }
        };
        Watches {
            watcher,
            dirs: HashSet::new(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.watcher.is_some()
    }

    /// Watches exactly `want` (inotify calls only: cheap on the runtime thread).
    pub(super) fn reconcile(&mut self, want: HashSet<PathBuf>) {
        use notify::Watcher;
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for gone in self.dirs.difference(&want).cloned().collect::<Vec<_>>() {
            // Fails when inotify already dropped the watch with the directory.
            let _ = w.unwatch(&gone);
            self.dirs.remove(&gone);
        }
        for dir in want {
            if self.dirs.contains(&dir) {
                continue;
            }
            match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir);
                }
                Err(e) => {
                    // Not counted as a read error: polling still reads the files.
                    tracing::debug!(path = %dir.display(), error = %e, "cannot watch directory; polling it");
                }
            }
        }
    }
}

/// The directories whose changes can change what `pattern` matches: the nearest
/// existing ancestor of its fixed leading part, and every existing directory matched
/// by its wildcard levels.
pub(super) fn pattern_dirs(pattern: &str) -> HashSet<PathBuf> {
    let path = Path::new(pattern);
    let parts: Vec<Component> = path.components().collect();
    let fixed = parts
        .iter()
        .position(|c| {
            let s = c.as_os_str().to_string_lossy();
            s.contains(['*', '?', '['])
        })
        .unwrap_or(parts.len().saturating_sub(1));
    let mut dirs = HashSet::new();
    let mut anchor: PathBuf = parts[..fixed].iter().collect();
    while !anchor.is_dir() {
        if !anchor.pop() {
            break;
        }
    }
    if anchor.is_dir() {
        dirs.insert(anchor);
    }
    // Wildcard directory levels: every level between the fixed part and the file name.
    for level in fixed + 1..parts.len() {
        let sub: PathBuf = parts[..level].iter().collect();
        let Ok(found) = glob::glob(&sub.to_string_lossy()) else {
            continue;
        };
        dirs.extend(found.flatten().filter(|p| p.is_dir()));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_nearest_existing_ancestor_and_wildcard_levels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pods/a_b_c/app")).unwrap();
        let dirs = pattern_dirs(&format!("{}/pods/*/app/*.log", root.display()));
        assert!(dirs.contains(&root.join("pods")), "{dirs:?}");
        assert!(dirs.contains(&root.join("pods/a_b_c")), "{dirs:?}");
        assert!(dirs.contains(&root.join("pods/a_b_c/app")), "{dirs:?}");
        let dirs = pattern_dirs(&format!("{}/later/deeper/app.log", root.display()));
        assert_eq!(dirs, HashSet::from([root.to_path_buf()]));
    }
}
