//! A cheap hasher for the sampler's per-tick maps and sets, keyed by pids,
//! process identities and `/proc` paths.
//!
//! std's default, SipHash-1-3, resists keys chosen to collide; these keys are not
//! chosen by anyone who could aim them (the kernel hands out pids, the paths are
//! built from them), and hashing the per-tick sets of every visible process with
//! SipHash was 7–11% of a tick (docs/performance.md). This is rustc's FxHash: per
//! word, rotate, xor, multiply.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map with [`PidHasher`].
pub type PidMap<K, V> = HashMap<K, V, BuildHasherDefault<PidHasher>>;
/// A set with [`PidHasher`].
pub type PidSet<K> = HashSet<K, BuildHasherDefault<PidHasher>>;

/// FxHash (as in rustc): fast on small integer keys, not collision-resistant.
#[derive(Debug, Default, Clone, Copy)]
pub struct PidHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl PidHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for PidHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }

    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(i as u32 as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::process::Identity;

    /// Keys that differ hash apart, and the maps behave as std's: what goes in
    /// comes out, by pid, identity and path.
    #[test]
    fn maps_and_sets_hold_what_is_put_in() {
        let mut by_pid: PidMap<i32, u64> = PidMap::default();
        let mut ids: PidSet<Identity> = PidSet::default();
        let mut paths: PidMap<String, i32> = PidMap::default();
        for pid in 1..5000 {
            by_pid.insert(pid, pid as u64 * 3);
            ids.insert(Identity {
                pid,
                start_ticks: 7,
            });
            paths.insert(format!("/proc/{pid}/status"), pid);
        }
        assert_eq!(by_pid.len(), 4999);
        assert_eq!(by_pid[&4321], 12963);
        assert!(ids.contains(&Identity {
            pid: 17,
            start_ticks: 7
        }));
        assert!(!ids.contains(&Identity {
            pid: 17,
            start_ticks: 8
        }));
        assert_eq!(paths["/proc/123/status"], 123);
        assert!(!paths.contains_key("/proc/123/statu"));
        let h = |b: &[u8]| {
            let mut s = PidHasher::default();
            s.write(b);
            s.finish()
        };
        assert_ne!(h(b"/proc/12/io"), h(b"/proc/21/io"));
        let distinct: PidSet<u64> = (0..10_000i32)
            .map(|p| {
                let mut s = PidHasher::default();
                s.write_i32(p);
                s.finish()
            })
            .collect();
        assert_eq!(distinct.len(), 10_000, "no two pids hash alike");
    }
}
