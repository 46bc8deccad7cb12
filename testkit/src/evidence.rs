//! The backend's evidence events (target
//! [`sayiir_diesel::telemetry::EVIDENCE_TARGET`]: failed store calls of a
//! claimed step, claims taken over from an expired holder), handed one by
//! one to a callback, without a tracing framework: to write them to a log
//! next to what a worker ran, or to assert on them in a test.
//!
//! ```no_run
//! let sink = sayiir_diesel_testkit::EvidenceSink::new(|e| eprintln!("{e}"));
//! tracing::subscriber::set_global_default(sink).expect("no other subscriber");
//! ```

use std::fmt;

use sayiir_diesel::telemetry::EVIDENCE_TARGET;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// One evidence event: its message and its fields, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// `store call failed` or `claim taken over`.
    pub message: String,
    /// Every other field (`op`, `instance_id`, `task_id`, `worker_id`,
    /// `transient`, `error`, `previous_worker`, `previous_task`), as text.
    pub fields: Vec<(&'static str, String)>,
}

impl Evidence {
    /// The value of field `name`, when the event carries it.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `message` then `name=value` pairs, tab-separated (tabs and newlines in
/// values become spaces): one line of a log.
impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for (name, value) in &self.fields {
            write!(f, "\t{name}={}", value.replace(['\t', '\n'], " "))?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Fields(Evidence);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.push((field.name(), value));
        }
    }
}

/// A `tracing` subscriber that enables only evidence events and calls `F`
/// with each. Spans are never enabled, so it costs nothing elsewhere.
pub struct EvidenceSink<F> {
    sink: F,
}

impl<F> EvidenceSink<F>
where
    F: Fn(Evidence) + Send + Sync + 'static,
{
    /// A subscriber calling `sink` with each evidence event.
    pub fn new(sink: F) -> Self {
        EvidenceSink { sink }
    }
}

impl<F> Subscriber for EvidenceSink<F>
where
    F: Fn(Evidence) + Send + Sync + 'static,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // `sometimes`, not `always`: the interest of a callsite is cached
        // for every thread, and a sink set with `set_default` (one per
        // test) must not depend on which thread reached the callsite
        // first; `enabled` then decides per event, for our few callsites.
        if self.enabled(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && metadata.target() == EVIDENCE_TARGET
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        (self.sink)(fields.0);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
