//! Fast seeding for `--scale`: copies of one real workflow, in SQL.
//!
//! A template instance is written through the backend's own API (submit,
//! and workers for the finished and parked ones); [`copy`] then inserts
//! `INSERT … SELECT … FROM generate_series` copies of its rows in every
//! table the backend keys by `instance_id`, changing only the instance id:
//! in the `instance_id` column, and inside any `bytea` column that holds
//! the template's id (the JSON snapshot blobs, framed by a 6-byte header
//! that is valid UTF-8). Everything else — status, position, timestamps,
//! wake time, queue columns — is the template's, so a copy is as valid as
//! the template for the finder and for maintenance. Column lists are read
//! from `information_schema` at run time; identity and serial columns take
//! their defaults.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::Error;
use crate::server::TAG;

/// Copies per statement.
const CHUNK: u64 = 100_000;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

/// A database connection that seeds copies.
pub struct Seeder {
    conn: AsyncPgConnection,
}

fn split(table: &str) -> (&str, &str) {
    table.split_once('.').unwrap_or(("public", table))
}

/// The id of copy `i` of kind `prefix`: the prefix and 9 digits.
pub fn copy_id(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:09}")
}

impl Seeder {
    pub async fn open(url: &str) -> Result<Seeder, Error> {
        Ok(Seeder {
            conn: AsyncPgConnection::establish(url).await?,
        })
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, Error> {
        let (schema, name) = split(table);
        let cols = diesel::sql_query(format!(
            "{TAG} SELECT column_name::text AS name, data_type::text AS kind \
             FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 \
               AND is_identity = 'NO' AND is_generated = 'NEVER' \
               AND coalesce(column_default, '') NOT LIKE 'nextval(%' \
             ORDER BY ordinal_position"
        ))
        .bind::<Text, _>(schema)
        .bind::<Text, _>(name)
        .load::<Column>(&mut self.conn)
        .await?;
        if cols.is_empty() {
            return Err(format!("seeding: no table {table}").into());
        }
        Ok(cols)
    }

    /// Copies `template`'s rows of `tables` (in order) as instances
    /// `prefix` + `from..=to` (9 digits); returns how long it took.
    pub async fn copy(
        &mut self,
        tables: &[&str],
        template: &str,
        prefix: &str,
        from: u64,
        to: u64,
    ) -> Result<Duration, Error> {
        let start = Instant::now();
        if template.len() != copy_id(prefix, 0).len() {
            return Err(
                format!("seeding: template id {template} and copy ids differ in length").into(),
            );
        }
        if from > to {
            return Ok(Duration::ZERO);
        }
        let mut statements = Vec::new();
        for table in tables {
            let cols = self.columns(table).await?;
            let new_id = "($4 || lpad(g.i::text, 9, '0'))";
            let exprs: Vec<String> = cols
                .iter()
                .map(|c| {
                    let col = format!("t.\"{}\"", c.name);
                    match (c.name.as_str(), c.kind.as_str()) {
                        ("instance_id", _) => new_id.to_owned(),
                        // JSON snapshot blobs (and any other bytes holding the id).
                        (_, "bytea") => format!(
                            "CASE WHEN position(convert_to($1, 'UTF8') IN {col}) > 0 \
                             THEN convert_to(replace(convert_from({col}, 'UTF8'), $1, {new_id}), 'UTF8') \
                             ELSE {col} END"
                        ),
                        // Our queue row's wakeup hint: unpadded base64 of a
                        // binary record holding the id (length-prefixed, so
                        // the copy's id has the template's length).
                        ("hint", "text") => {
                            let bytes = format!(
                                "decode({col} || repeat('=', (4 - length({col}) % 4) % 4), 'base64')"
                            );
                            format!(
                                "CASE WHEN coalesce({col}, '') = '' \
                                      OR position(convert_to($1, 'UTF8') IN {bytes}) = 0 THEN {col} \
                                 ELSE rtrim(replace(encode(overlay({bytes} PLACING convert_to({new_id}, 'UTF8') \
                                      FROM position(convert_to($1, 'UTF8') IN {bytes})), 'base64'), E'\\n', ''), '=') END"
                            )
                        }
                        (_, "text") => format!(
                            "CASE WHEN strpos({col}, $1) > 0 THEN replace({col}, $1, {new_id}) ELSE {col} END"
                        ),
                        _ => col,
                    }
                })
                .collect();
            let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
            statements.push(format!(
                "{TAG} INSERT INTO {table} ({}) SELECT {} FROM {table} AS t \
                 CROSS JOIN generate_series($2::bigint, $3::bigint) AS g(i) \
                 WHERE t.instance_id = $1",
                names.join(", "),
                exprs.join(", ")
            ));
        }
        let mut lo = from;
        while lo <= to {
            let hi = to.min(lo + CHUNK - 1);
            self.conn
                .transaction::<_, diesel::result::Error, _>(async |conn| {
                    for sql in &statements {
                        diesel::sql_query(sql)
                            .bind::<Text, _>(template)
                            .bind::<BigInt, _>(i64::try_from(lo).unwrap_or(i64::MAX))
                            .bind::<BigInt, _>(i64::try_from(hi).unwrap_or(i64::MAX))
                            .bind::<Text, _>(prefix)
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await?;
            lo = hi + 1;
        }
        Ok(start.elapsed())
    }
}
