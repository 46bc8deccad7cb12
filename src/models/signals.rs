//! `sayiir.signals`: pending cancel and pause requests, at most one of each
//! kind per instance.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::snapshot::{SignalKind, SignalRequest};

use crate::error::Result;
use crate::schema::sayiir::signals;

/// A pending cancel or pause request (`sayiir.signals`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signals, check_for_backend(diesel::pg::Pg))]
pub struct Signal {
    /// Instance id.
    pub instance_id: String,
    /// `Cancel` or `Pause`.
    pub kind: String,
    /// Why.
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: Option<String>,
    /// When the caller asked.
    pub requested_at: DateTime<Utc>,
}

/// A request to store, or to replace the pending one of its kind with.
#[derive(Debug, Clone, Copy, Insertable, AsChangeset)]
#[diesel(table_name = signals, check_for_backend(diesel::pg::Pg))]
#[diesel(treat_none_as_null = true, primary_key(instance_id, kind))]
pub struct NewSignal<'a> {
    /// Instance id.
    pub instance_id: &'a str,
    /// `Cancel` or `Pause`.
    pub kind: &'a str,
    /// Why.
    pub reason: Option<&'a str>,
    /// Who asked.
    pub requested_by: Option<&'a str>,
    /// When the caller asked.
    pub requested_at: DateTime<Utc>,
}

impl<'a> NewSignal<'a> {
    /// The row for a runtime request of `kind`.
    pub(crate) fn new(instance_id: &'a str, kind: SignalKind, request: &'a SignalRequest) -> Self {
        Self {
            instance_id,
            kind: kind_name(kind),
            reason: request.reason.as_deref(),
            requested_by: request.requested_by.as_deref(),
            requested_at: request.requested_at,
        }
    }

    /// Stores the request, replacing a pending one of the same kind (the
    /// later request's fields win). The caller holds the workflow row lock.
    pub(crate) async fn upsert(self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(signals::table)
            .values(self)
            .on_conflict((signals::instance_id, signals::kind))
            .do_update()
            .set(self)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The `kind` column's text for a request kind (the runtime's variant name).
pub(crate) const fn kind_name(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::Cancel => "Cancel",
        SignalKind::Pause => "Pause",
    }
}

impl Signal {
    /// The runtime's view of the stored request.
    pub(crate) fn into_request(self) -> SignalRequest {
        SignalRequest {
            reason: self.reason,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
        }
    }
}

/// The pending request of `kind` for the instance, if any.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    kind: SignalKind,
) -> Result<Option<Signal>> {
    Ok(signals::table
        .find((instance_id, kind_name(kind)))
        .select(Signal::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Removes the pending request of `kind`, if any.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    kind: SignalKind,
) -> Result<()> {
    diesel::delete(signals::table.find((instance_id, kind_name(kind))))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_runtimes_variant_names() {
        for kind in [SignalKind::Cancel, SignalKind::Pause] {
            assert_eq!(kind_name(kind), kind.as_ref());
        }
    }
}
