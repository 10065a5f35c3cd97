//! The per-receiver rate limit: a token bucket refilled at `max_per_minute` per
//! minute. Each message takes a token when it is first sent (its retries follow the
//! backoff and `Retry-After` instead); without one, it waits in the queue for the
//! next token: delayed, never dropped. The clock is passed in.
//!
//! The receivers' bucket holds one token (see [`BURST`]): messages are spaced at
//! least `60 / max_per_minute` seconds apart, so no minute ever sees more than
//! `max_per_minute` (plus the one at its edge), and Slack's "one per second" holds
//! with `max_per_minute = 60`. Grouping already batches what happens together.

use std::time::Duration;

use tokio::time::Instant;

/// The receivers' bucket size: no bursts.
pub const BURST: u32 = 1;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_minute: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens, refilled at `per_minute`.
    pub fn new(per_minute: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        TokenBucket {
            per_minute: f64::from(per_minute.max(1)),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes a token, or says when the next one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_minute / 60.0).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(now + Duration::from_secs_f64(missing * 60.0 / self.per_minute))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_every_sixtieth_of_a_minute_per_token() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(6, 6, t0);
        for _ in 0..6 {
            assert!(b.take(Instant::now()).is_ok());
        }
        // Empty: the next token is 10 s away.
        assert_eq!(b.take(Instant::now()), Err(t0 + Duration::from_secs(10)));
        advance(Duration::from_millis(9_999)).await;
        assert!(b.take(Instant::now()).is_err());
        advance(Duration::from_millis(1)).await;
        assert!(b.take(Instant::now()).is_ok());
        assert!(b.take(Instant::now()).is_err());
        // A long quiet spell refills the bucket, but never beyond its size.
        advance(Duration::from_secs(3600)).await;
        let taken = (0..20).filter(|_| b.take(Instant::now()).is_ok()).count();
        assert_eq!(taken, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_of_one_spaces_requests_evenly() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, BURST, t0);
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(t0 + Duration::from_secs(3)));
        advance(Duration::from_secs(600)).await;
        assert!(
            b.take(Instant::now()).is_ok(),
            "a quiet spell saves no burst"
        );
        assert!(b.take(Instant::now()).is_err());
    }
}
