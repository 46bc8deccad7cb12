//! The parked part: the finder next to workflows parked an hour away, and
//! for our backend the maintenance pass and the plans of its statement.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::stats::stats_note;
use super::templates::templates;
use super::timing::{pct, time_and_explain};
use super::{Ctx, LIMIT, QUEUED, WORKER, aging, count_label};
use crate::backends::Backend;
use crate::seed::Seeder;
use crate::{Error, plans};

pub(super) async fn parked_part<B: Backend>(cx: &mut Ctx<'_>) -> Result<(), Error> {
    let db = format!("sayiir_scale_{}_parked_{}", std::process::id(), B::NAME);
    let oid = cx.server.create_database(&db).await?;
    let r = parked_states::<B>(cx, &db, oid).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

async fn parked_states<B: Backend>(cx: &mut Ctx<'_>, db: &str, oid: i64) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let backend = B::open_finder(&url, cx.args.pool).await?;
    templates(&backend, cx.args, &url, false, true).await?;
    let mut seeder = Seeder::open(&url).await?;
    let parked = cx.sa.parked as u64;
    let mut seeded = seeder
        .copy(B::TABLES, "ptemplate0", "p", 1, parked.saturating_sub(1))
        .await?;
    seeded += seeder
        .copy(B::TABLES, "qtemplate0", "q", 1, QUEUED - 1)
        .await?;
    let state = format!(
        "{} queued, {} parked",
        count_label(QUEUED),
        count_label(parked)
    );
    println!(
        "{:<8} parked, {state}: seeded in {:.1} s",
        B::NAME,
        seeded.as_secs_f64()
    );
    let mut conn = AsyncPgConnection::establish(&url).await?;
    for analyzed in [false, true] {
        let mode = if analyzed { "analyzed" } else { "stale" };
        if analyzed {
            conn.batch_execute("ANALYZE").await?;
        }
        let stats = stats_note::<B>(&mut conn).await?;
        let t = time_and_explain(cx, &backend, oid, &format!("parked {mode}")).await?;
        println!(
            "{:<8}   {mode:<8} finder p50 {:.3} ms p99 {:.3} ms, returned {} | {stats}",
            B::NAME,
            t.p50,
            t.p99,
            t.returned()
        );
        cx.figs.set(
            "parked",
            &format!("{state}: finder p50 ms ({mode})"),
            B::NAME,
            Some(t.p50),
            &t.returned(),
        );
        cx.figs.set(
            "parked",
            &format!("{state}: finder p99 ms ({mode})"),
            B::NAME,
            Some(t.p99),
            "",
        );
        if B::NAME == "diesel" {
            let (with, without) = maintenance_pairs(&backend, 20).await?;
            println!(
                "{:<8}   {mode:<8} find running maintenance p50 {with:.3} ms, next find p50 {without:.3} ms",
                B::NAME
            );
            cx.figs.set(
                "parked",
                &format!("{state}: find + maintenance pass p50 ms ({mode})"),
                B::NAME,
                Some(with),
                "",
            );
            cx.figs.set(
                "parked",
                &format!("{state}: find, no maintenance p50 ms ({mode})"),
                B::NAME,
                Some(without),
                "",
            );
            for generic in [false, true] {
                let plan = explain_maintenance(&mut conn, generic).await?;
                let kind = if generic { "generic" } else { "custom" };
                let file = cx
                    .plans_dir
                    .join(format!("diesel-maintenance-{mode}-{kind}.txt"));
                std::fs::write(&file, &plan)?;
                let seq = plans::seq_scans(&plan);
                let reads = if seq.is_empty() {
                    "indexes only".to_owned()
                } else {
                    format!("seq scan of {}", seq.join(", "))
                };
                println!(
                    "{:<8}   {mode:<8} MAINTENANCE_SQL {kind} plan: {:.3} ms, {reads}: {}",
                    B::NAME,
                    plans::execution_ms(&plan).unwrap_or(f64::NAN),
                    plans::scans(&plan)
                );
                cx.figs.set(
                    "parked",
                    &format!("{state}: MAINTENANCE_SQL ms, {kind} plan ({mode})"),
                    B::NAME,
                    plans::execution_ms(&plan),
                    &reads,
                );
            }
        }
    }
    Ok(())
}

/// `pairs` times: wait until maintenance is due again, time the find call
/// that runs it, then the next one (which does not). Medians of both.
async fn maintenance_pairs<B: Backend>(backend: &B, pairs: usize) -> Result<(f64, f64), Error> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..pairs {
        tokio::time::sleep(Duration::from_millis(550)).await;
        for v in [&mut with, &mut without] {
            let t = Instant::now();
            backend
                .find_available_tasks(WORKER, LIMIT, aging(), &[])
                .await?;
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    Ok((pct(&with, 0.5), pct(&without, 0.5)))
}

/// Maintenance's scan for due rows: the statement the backend runs, read
/// from its source file (the crate keeps its statements private).
const MAINTENANCE_SQL: &str = include_str!("../../../src/models/tasks/due_work.sql");

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the maintenance statement with the
/// backend's parameters (recovery grace 30 s, batch 64), prepared, with a
/// custom or a generic plan.
async fn explain_maintenance(conn: &mut AsyncPgConnection, generic: bool) -> Result<String, Error> {
    conn.batch_execute(&format!(
        "PREPARE bench_due(float8, bigint) AS {MAINTENANCE_SQL}"
    ))
    .await?;
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    let result = async {
        conn.batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await?;
        let lines = diesel::sql_query("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_due(30000, 64)")
            .load::<PlanLine>(conn)
            .await?;
        Ok::<String, Error>(
            lines
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
    .await;
    conn.batch_execute("RESET plan_cache_mode; DEALLOCATE bench_due")
        .await?;
    result
}
