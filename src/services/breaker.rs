//! A circuit breaker per upstream (postcodes.io, the Members API): after a few failures in a row
//! Rally stops calling it for a while and answers at once, instead of making every supporter wait
//! for a timeout and piling more requests onto a service that is already struggling.
use std::future::Future;
use std::time::Duration;

use failsafe::backoff::Constant;
use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker as _;
use failsafe::StateMachine;

/// Failures in a row that open the breaker.
const FAILURES: u32 = 3;
/// How long it stays open before one call is let through to see whether the upstream is back.
const OPEN_FOR: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Breaker {
    name: &'static str,
    machine: StateMachine<ConsecutiveFailures<Constant>, ()>,
}

/// Why a guarded call gave no answer.
#[derive(Debug)]
pub enum Guarded<E> {
    /// The upstream failed.
    Failed(E),
    /// The breaker is open: the upstream was not called.
    Open,
}

impl Breaker {
    pub fn new(name: &'static str) -> Self {
        let policy = consecutive_failures(FAILURES, failsafe::backoff::constant(OPEN_FOR));
        Breaker { name, machine: failsafe::Config::new().failure_policy(policy).build() }
    }

    pub async fn call<T, E, F>(&self, call: F) -> Result<T, Guarded<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        match self.machine.call(call).await {
            Ok(v) => Ok(v),
            Err(failsafe::Error::Inner(e)) => Err(Guarded::Failed(e)),
            Err(failsafe::Error::Rejected) => {
                crate::metrics::upstream_error(self.name);
                Err(Guarded::Open)
            }
        }
    }
}
