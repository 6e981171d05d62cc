//! A run-level budget of LM calls, tokens and cost that stops work cleanly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Limits for one run; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BudgetLimits {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

/// Shared counters checked before every provider call (cache hits are free).
#[derive(Debug, Default)]
pub struct Budget {
    limits: BudgetLimits,
    calls: AtomicU64,
    tokens: AtomicU64,
    cost_usd: Mutex<f64>,
}

impl Budget {
    /// A budget with the given limits.
    pub fn new(limits: BudgetLimits) -> Self {
        Budget {
            limits,
            ..Default::default()
        }
    }

    /// A budget without limits (still counts).
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// The configured limits.
    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// Reserves one call; refuses with a reason when any limit is reached.
    pub fn try_start_call(&self) -> Result<(), String> {
        if let Some(max) = self.limits.max_tokens {
            let used = self.tokens.load(Ordering::SeqCst);
            if used >= max {
                return Err(format!("{used} tokens used of {max}"));
            }
        }
        if let Some(max) = self.limits.max_cost_usd {
            let used = self.cost_usd.lock().map(|c| *c).unwrap_or(0.0);
            if used >= max {
                return Err(format!("${used:.4} spent of ${max:.4}"));
            }
        }
        let prev = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = self.limits.max_calls {
            if prev >= max {
                self.calls.fetch_sub(1, Ordering::SeqCst);
                return Err(format!("{prev} calls made of {max}"));
            }
        }
        Ok(())
    }

    /// Records the tokens and cost of a finished call.
    pub fn record(&self, tokens: u64, cost_usd: f64) {
        self.tokens.fetch_add(tokens, Ordering::SeqCst);
        if let Ok(mut c) = self.cost_usd.lock() {
            *c += cost_usd;
        }
    }

    /// Calls, tokens and cost so far.
    pub fn used(&self) -> (u64, u64, f64) {
        (
            self.calls.load(Ordering::SeqCst),
            self.tokens.load(Ordering::SeqCst),
            self.cost_usd.lock().map(|c| *c).unwrap_or(0.0),
        )
    }

    /// Fraction of the tightest limit used, for progress reporting (None if unlimited).
    pub fn fraction_used(&self) -> Option<f64> {
        let (calls, tokens, cost) = self.used();
        let fracs = [
            self.limits
                .max_calls
                .map(|m| calls as f64 / m.max(1) as f64),
            self.limits
                .max_tokens
                .map(|m| tokens as f64 / m.max(1) as f64),
            self.limits
                .max_cost_usd
                .map(|m| if m > 0.0 { cost / m } else { 1.0 }),
        ];
        fracs
            .into_iter()
            .flatten()
            .reduce(f64::max)
            .map(|f| f.min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_limit_refuses_the_next_call() {
        let b = Budget::new(BudgetLimits {
            max_calls: Some(2),
            ..Default::default()
        });
        assert!(b.try_start_call().is_ok());
        assert!(b.try_start_call().is_ok());
        assert!(b.try_start_call().is_err());
        assert_eq!(b.used().0, 2);
        assert_eq!(b.fraction_used(), Some(1.0));
    }

    #[test]
    fn token_and_cost_limits() {
        let b = Budget::new(BudgetLimits {
            max_tokens: Some(100),
            max_cost_usd: Some(1.0),
            ..Default::default()
        });
        b.try_start_call().unwrap();
        b.record(60, 0.5);
        b.try_start_call().unwrap();
        b.record(60, 0.1);
        let err = b.try_start_call().unwrap_err();
        assert!(err.contains("tokens"), "{err}");
    }
}
