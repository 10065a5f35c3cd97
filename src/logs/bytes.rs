//! Byte searches for the per-line hot paths, without memchr's per-call dispatch.
//!
//! `memchr::memchr(b, s)` picks its implementation through a function pointer on
//! every call and goes through three layers before it reaches the vector loop; over
//! a realistic log (a few searches per line of ~100 bytes, strings of a few bytes in
//! JSON lines) those layers cost about 5% of all instructions (issue 17, cachegrind).
//! A searcher built once, memchr's own AVX2 one where the CPU has it, is called
//! directly and handles short haystacks inline. Elsewhere memchr's functions are used.

#[cfg(target_arch = "x86_64")]
use memchr::arch::x86_64::avx2::memchr::{One, Three, Two};

/// Finds one byte.
#[derive(Debug, Clone, Copy)]
pub(super) struct Byte {
    needle: u8,
    #[cfg(target_arch = "x86_64")]
    avx2: Option<One>,
}

impl Byte {
    pub(super) fn new(needle: u8) -> Byte {
        Byte {
            needle,
            #[cfg(target_arch = "x86_64")]
            avx2: One::new(needle),
        }
    }

    /// Where the byte first is in `haystack`.
    #[inline]
    pub(super) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(haystack);
        }
        memchr::memchr(self.needle, haystack)
    }
}

/// Finds the first of two bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct TwoBytes {
    needles: (u8, u8),
    #[cfg(target_arch = "x86_64")]
    avx2: Option<Two>,
}

impl TwoBytes {
    pub(super) fn new(a: u8, b: u8) -> TwoBytes {
        TwoBytes {
            needles: (a, b),
            #[cfg(target_arch = "x86_64")]
            avx2: Two::new(a, b),
        }
    }

    /// Where either byte first is in `haystack`.
    #[inline]
    pub(super) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(two) = &self.avx2 {
            return two.find(haystack);
        }
        memchr::memchr2(self.needles.0, self.needles.1, haystack)
    }
}

/// Finds the first of three bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct ThreeBytes {
    needles: (u8, u8, u8),
    #[cfg(target_arch = "x86_64")]
    avx2: Option<Three>,
}

impl ThreeBytes {
    pub(super) fn new(a: u8, b: u8, c: u8) -> ThreeBytes {
        ThreeBytes {
            needles: (a, b, c),
            #[cfg(target_arch = "x86_64")]
            avx2: Three::new(a, b, c),
        }
    }

    /// Where any of the bytes first is in `haystack`.
    #[inline]
    pub(super) fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(three) = &self.avx2 {
            return three.find(haystack);
        }
        let (a, b, c) = self.needles;
        memchr::memchr3(a, b, c, haystack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_agree_with_memchr() {
        agree(Byte::new(b'='), TwoBytes::new(b'"', b'\\'));
        agree_three(ThreeBytes::new(b'\n', b'=', b'H'));
    }

    /// The fallback where the CPU has no AVX2 (this machine has it, so the searchers
    /// are built without it here).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn searches_without_avx2_agree_with_memchr() {
        let eq = Byte {
            needle: b'=',
            avx2: None,
        };
        let quote_or_escape = TwoBytes {
            needles: (b'"', b'\\'),
            avx2: None,
        };
        agree(eq, quote_or_escape);
        agree_three(ThreeBytes {
            needles: (b'\n', b'=', b'H'),
            avx2: None,
        });
    }

    fn agree_three(marks: ThreeBytes) {
        for len in 0..80 {
            for at in 0..=len {
                let mut s = vec![b'a'; len];
                if at < len {
                    s[at] = [b'\n', b'=', b'H'][at % 3];
                }
                assert_eq!(
                    marks.find(&s),
                    memchr::memchr3(b'\n', b'=', b'H', &s),
                    "{len} {at}"
                );
            }
        }
    }

    fn agree(eq: Byte, quote_or_escape: TwoBytes) {
        // Every length around the 16- and 32-byte vector widths, needle anywhere.
        for len in 0..80 {
            for at in 0..=len {
                let mut s = vec![b'a'; len];
                if at < len {
                    s[at] = b'=';
                }
                assert_eq!(eq.find(&s), memchr::memchr(b'=', &s), "{len} {at}");
                if at < len {
                    s[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                }
                assert_eq!(
                    quote_or_escape.find(&s),
                    memchr::memchr2(b'"', b'\\', &s),
                    "{len} {at}"
                );
            }
        }
    }
}
