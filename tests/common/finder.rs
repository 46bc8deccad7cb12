//! Shared helpers of the claim, finder and wakeup tests.

use std::time::Duration;

use sayiir_persistence::TaskClaimStore;

use super::Backend;

pub fn ttl(secs: i64) -> Option<chrono::Duration> {
    Some(chrono::Duration::seconds(secs))
}

pub fn policy() -> sayiir_core::task::RetryPolicy {
    sayiir_core::task::RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_secs(1),
        backoff_multiplier: 2.0,
        max_delay: None,
    }
}

pub fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
}

pub async fn found(b: &Backend, worker: &str, tags: &[String]) -> Vec<String> {
    b.find_available_tasks(worker, 10, aging(), tags)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id.to_string())
        .collect()
}
