//! A recorder of the `metrics` facade for this test binary, and snapshots
//! of what it recorded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sayiir_diesel::telemetry as t;

/// One snapshot of the recorder (counters and histograms since the last
/// one, gauges as last set), keyed `name` or `name{label=value}`.
#[derive(Debug, Default)]
pub struct Snap {
    pub counters: HashMap<String, u64>,
    pub gauges: HashMap<String, f64>,
    pub histograms: HashMap<String, Vec<f64>>,
}

impl Snap {
    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// The sum of a counter over all its labels.
    pub fn counter_sum(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn histogram_count(&self, key: &str) -> usize {
        self.histograms.get(key).map_or(0, Vec::len)
    }
}

pub fn op(name: &str) -> String {
    format!("{}{{op={name}}}", t::STORE_CALL_SECONDS)
}

/// Takes snapshots and keeps running totals of counters and histograms.
pub struct Recorder {
    snapshotter: Snapshotter,
    pub totals: Snap,
}

impl Recorder {
    pub fn install() -> Self {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        Self {
            snapshotter,
            totals: Snap::default(),
        }
    }

    /// What was recorded since the last call (counters and histograms are
    /// drained by each snapshot; so are gauges, which read 0 until set
    /// again).
    pub fn take(&mut self) -> Snap {
        let mut snap = Snap::default();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            match value {
                DebugValue::Counter(n) => {
                    *self.totals.counters.entry(name.clone()).or_default() += n;
                    snap.counters.insert(name, n);
                }
                DebugValue::Gauge(v) => {
                    snap.gauges.insert(name, v.into_inner());
                }
                DebugValue::Histogram(vs) => {
                    let vs: Vec<f64> = vs.into_iter().map(|v| v.into_inner()).collect();
                    self.totals
                        .histograms
                        .entry(name.clone())
                        .or_default()
                        .extend(&vs);
                    snap.histograms.insert(name, vs);
                }
            }
        }
        snap
    }
}

/// Takes snapshots until `done` holds for one, for at most `limit`.
pub async fn until(rec: &mut Recorder, limit: Duration, done: impl Fn(&Snap) -> bool) -> Snap {
    let deadline = Instant::now() + limit;
    loop {
        let snap = rec.take();
        if done(&snap) {
            return snap;
        }
        assert!(Instant::now() < deadline, "never reached: {snap:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
