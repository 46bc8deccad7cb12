//! The bench's own read-only "monitor" queries on a run's database.
//!
//! Every monitor statement carries the comment [`TAG`], so it is left out
//! of the statement counts, and the monitor counts its own statements so
//! they can be taken off the transaction counts (each is one autocommit
//! transaction).

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::Error;
use crate::server::{Num, Str, TAG};

/// The bench's own connection to a run's database. Reads the backend's
/// workflow table directly (both backends keep `status` and
/// `position_kind` columns there), never through the backend.
pub struct Monitor {
    conn: AsyncPgConnection,
    table: &'static str,
    /// Statements (= autocommit transactions) issued so far.
    pub calls: i64,
}

impl Monitor {
    pub async fn open(url: &str, table: &'static str) -> Result<Monitor, Error> {
        Ok(Monitor {
            conn: AsyncPgConnection::establish(url).await?,
            table,
            calls: 0,
        })
    }

    /// Workflows in state `status` (and at position `kind` when given).
    pub async fn count(&mut self, status: &str, kind: Option<&str>) -> Result<i64, Error> {
        self.calls += 1;
        let sql = format!(
            "{TAG} SELECT count(*)::bigint AS n FROM {} \
             WHERE status = $1 AND ($2::text IS NULL OR position_kind = $2)",
            self.table
        );
        Ok(diesel::sql_query(sql)
            .bind::<Text, _>(status)
            .bind::<diesel::sql_types::Nullable<Text>, _>(kind)
            .get_result::<Num>(&mut self.conn)
            .await?
            .n)
    }

    /// Instances in progress and parked at position `kind`.
    pub async fn parked(&mut self, kind: &str) -> Result<Vec<String>, Error> {
        self.calls += 1;
        let sql = format!(
            "{TAG} SELECT instance_id AS s FROM {} \
             WHERE status = 'InProgress' AND position_kind = $1",
            self.table
        );
        let rows = diesel::sql_query(sql)
            .bind::<Text, _>(kind)
            .load::<Str>(&mut self.conn)
            .await?;
        Ok(rows.into_iter().map(|r| r.s).collect())
    }
}
