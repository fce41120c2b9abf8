//! The request throttle shared by every request of one source: the configured `requests_per_minute` (a GCRA
//! limiter from `governor`) and an adaptive spacing that grows on 429/503 and decays on success, so that all pages
//! in flight slow down together when the server pushes back instead of each hammering it on its own.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest spacing the throttle adapts to.
const MAX_SPACING: Duration = Duration::from_secs(10);

pub struct Throttle {
    limiter: Option<DefaultDirectRateLimiter>,
    adaptive: Mutex<Adaptive>,
}

struct Adaptive {
    /// Time kept between requests after a 429 (zero when the server is content).
    spacing: Duration,
    /// No request before this instant.
    next: Option<Instant>,
}

impl Throttle {
    /// `requests_per_minute` requests a minute at most, in bursts of at most `burst` (the pages in flight).
    pub fn new(requests_per_minute: Option<u32>, burst: u32) -> Throttle {
        let limiter = requests_per_minute.and_then(NonZeroU32::new).map(|rpm| {
            // A burst as large as the whole minute would let the client send up to twice the limit in some
            // 60-second windows; the pages in flight are the burst that is useful.
            let burst = NonZeroU32::new(burst.clamp(1, rpm.get())).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_minute(rpm).allow_burst(burst))
        });
        Throttle {
            limiter,
            adaptive: Mutex::new(Adaptive {
                spacing: Duration::ZERO,
                next: None,
            }),
        }
    }

    /// Waits until a request may go.
    pub async fn ready(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let wait = {
            let mut a = self.lock();
            let now = Instant::now();
            match a.next {
                Some(next) if next > now => {
                    a.next = Some(next + a.spacing);
                    next - now
                }
                _ => {
                    a.next = (!a.spacing.is_zero()).then(|| now + a.spacing);
                    Duration::ZERO
                }
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The server refused for load (429/503): every request waits `retry_after` (or the doubled spacing), and the
    /// spacing between requests doubles.
    pub fn pushed_back(&self, retry_after: Option<Duration>) -> Duration {
        let mut a = self.lock();
        a.spacing = (a.spacing * 2).clamp(Duration::from_millis(50), MAX_SPACING);
        let wait = retry_after
            .unwrap_or(a.spacing)
            .min(Duration::from_secs(120))
            + jitter(a.spacing);
        let until = Instant::now() + wait;
        a.next = Some(a.next.map_or(until, |n| n.max(until)));
        wait
    }

    /// A request succeeded: the spacing decays by a tenth (and disappears below a millisecond).
    pub fn succeeded(&self) {
        let mut a = self.lock();
        if !a.spacing.is_zero() {
            a.spacing = a.spacing.mul_f64(0.9);
            if a.spacing < Duration::from_millis(1) {
                a.spacing = Duration::ZERO;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Adaptive> {
        self.adaptive
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Up to a quarter of `scale` (at least 0–25 ms), so clients that were refused together do not return together.
pub fn jitter(scale: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let span = scale.max(Duration::from_millis(100)) / 4;
    span.mul_f64(f64::from(nanos % 1_000) / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn push_back_spaces_requests_and_success_relaxes_it() {
        let t = Throttle::new(None, 1);
        let wait = t.pushed_back(Some(Duration::from_millis(30)));
        assert!(wait >= Duration::from_millis(30));
        let started = Instant::now();
        t.ready().await;
        assert!(started.elapsed() >= Duration::from_millis(25));
        for _ in 0..100 {
            t.succeeded();
        }
        assert_eq!(t.lock().spacing, Duration::ZERO);
    }

    #[tokio::test]
    async fn the_limit_holds_over_a_burst() {
        // 600 a minute = one per 100 ms after a burst of 2.
        let t = Throttle::new(Some(600), 2);
        let started = Instant::now();
        for _ in 0..5 {
            t.ready().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
    }
}
