//! The backend's evidence events, recorded per test.

use std::sync::{Arc, Mutex};

use sayiir_diesel_testkit::{Evidence, EvidenceSink};

/// Every evidence event of this thread while the guard lives (set it
/// before the calls it should see; `#[tokio::test]`'s default runtime runs
/// the test on one thread).
pub fn recorder() -> (Arc<Mutex<Vec<Evidence>>>, tracing::subscriber::DefaultGuard) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let guard = tracing::subscriber::set_default(EvidenceSink::new(move |e| {
        sink.lock().unwrap().push(e);
    }));
    (seen, guard)
}
