//! `sayiir.events`: buffered external events, a FIFO queue per (instance,
//! signal name). Events have no foreign key: one may arrive before its
//! instance exists or after it finished.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;
use crate::queries::Raw;
use crate::schema::sayiir::events;

/// Deletes and returns the oldest event of one (instance, name) queue.
pub(crate) const POP_OLDEST: &str = include_str!("events/pop_oldest.sql");

/// A buffered external event (`sayiir.events`), FIFO by `id` per
/// (instance, signal name).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    /// Queue order.
    pub id: i64,
    /// Instance id (may name an instance that does not exist yet).
    pub instance_id: String,
    /// Signal name.
    pub signal_name: String,
    /// Opaque payload.
    pub payload: Vec<u8>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

/// A new event at the tail of its queue (`id` and `sent_at` come from the
/// database).
#[derive(Debug, Clone, Copy, Insertable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct NewEvent<'a> {
    /// Instance id.
    pub instance_id: &'a str,
    /// Signal name.
    pub signal_name: &'a str,
    /// Opaque payload.
    pub payload: &'a [u8],
}

impl NewEvent<'_> {
    /// Appends the event to the tail of its (instance, name) queue.
    pub(crate) async fn push(self, conn: &mut AsyncPgConnection) -> Result<()> {
        diesel::insert_into(events::table)
            .values(self)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Removes and returns the payload of the oldest buffered event for
/// (instance, name), in one statement. Concurrent consumers skip a head
/// another one has locked, so no event is handed out twice.
pub(crate) async fn pop_oldest(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    signal_name: &str,
) -> Result<Option<Vec<u8>>> {
    #[derive(QueryableByName)]
    struct Popped {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        payload: Vec<u8>,
    }
    let popped: Option<Popped> = Raw::new(POP_OLDEST)
        .bind::<Text, _>(instance_id)
        .bind::<Text, _>(signal_name)
        .get_result(conn)
        .await
        .optional()?;
    Ok(popped.map(|p| p.payload))
}
