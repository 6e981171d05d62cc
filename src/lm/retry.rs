//! Exponential backoff with jitter (the original's RobustModule).

use crate::config::RetryConfig;
use rand::Rng;
use std::time::Duration;

/// Delay before retry number `attempt` (1-based): `base * 2^(attempt-1)` with
/// full jitter in [50%, 100%], capped at `max_delay`; a server's Retry-After
/// wins when it asks for longer, up to [`MAX_RETRY_AFTER`]. A longer request
/// is ignored, as OpenAI's own client does, so that a misbehaving server
/// cannot park a run for hours; the backoff stands instead.
pub fn backoff_delay(
    policy: &RetryConfig,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = policy
        .base_delay_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(policy.max_delay_ms);
    let jittered = if capped == 0 {
        0
    } else {
        rand::thread_rng().gen_range(capped / 2..=capped)
    };
    let delay = Duration::from_millis(jittered);
    retry_after
        .filter(|ra| *ra <= MAX_RETRY_AFTER)
        .map_or(delay, |ra| ra.max(delay))
}

/// The longest server-requested wait honoured between two attempts.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Parses an HTTP Retry-After header value given in seconds (the common form).
/// The value comes from the server: one too large for a `Duration` is ignored
/// rather than panicking.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryConfig {
            max_retries: 5,
            base_delay_ms: 100,
            max_delay_ms: 1000,
            timeout_secs: 1,
        };
        for _ in 0..50 {
            let d1 = backoff_delay(&p, 1, None).as_millis();
            let d3 = backoff_delay(&p, 3, None).as_millis();
            let d9 = backoff_delay(&p, 9, None).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            assert!((200..=400).contains(&d3), "{d3}");
            assert!((500..=1000).contains(&d9), "{d9}");
        }
        let ra = backoff_delay(&p, 1, Some(Duration::from_secs(2)));
        assert_eq!(ra, Duration::from_secs(2));
        assert_eq!(backoff_delay(&p, 1, Some(MAX_RETRY_AFTER)), MAX_RETRY_AFTER);
        // A day-long Retry-After is ignored: the capped backoff stands.
        let day = backoff_delay(&p, 9, Some(Duration::from_secs(86_400)));
        assert!((500..=1000).contains(&day.as_millis()), "{day:?}");
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
