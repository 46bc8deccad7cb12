//! The finder part: timed finder calls as queued and finished workflows
//! pile up, each state stale and analyzed.

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use super::stats::stats_note;
use super::templates::templates;
use super::timing::time_and_explain;
use super::{Ctx, QUEUED, count_label};
use crate::Error;
use crate::backends::Backend;
use crate::seed::Seeder;

pub(super) async fn finder_part<B: Backend>(cx: &mut Ctx<'_>) -> Result<(), Error> {
    let db = format!("sayiir_scale_{}_finder_{}", std::process::id(), B::NAME);
    let oid = cx.server.create_database(&db).await?;
    let r = finder_states::<B>(cx, &db, oid).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

async fn finder_states<B: Backend>(cx: &mut Ctx<'_>, db: &str, oid: i64) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let backend = B::open_finder(&url, cx.args.pool).await?;
    templates(&backend, cx.args, &url, true, false).await?;
    let mut seeder = Seeder::open(&url).await?;
    let mut conn = AsyncPgConnection::establish(&url).await?;
    let max = cx.sa.max_finished as u64;
    let mut states = vec![
        (QUEUED, 0),
        (QUEUED, 100_000.min(max)),
        (QUEUED, max),
        (QUEUED + 10_000, max),
        (QUEUED + 100_000, max),
    ];
    states.dedup();
    // The templates count: one queued, one finished.
    let (mut queued, mut finished) = (1_u64, 1_u64);
    for (q, f) in states {
        let mut seeded = Duration::ZERO;
        if f > finished {
            seeded += seeder
                .copy(
                    &[B::TABLES[0], B::OUTPUTS_TABLE],
                    "ftemplate0",
                    "f",
                    finished,
                    f - 1,
                )
                .await?;
            finished = f;
        }
        if q > queued {
            seeded += seeder
                .copy(B::TABLES, "qtemplate0", "q", queued, q - 1)
                .await?;
            queued = q;
        }
        let state = format!("{} queued, {} finished", count_label(q), count_label(f));
        println!(
            "{:<8} finder, {state}: seeded in {:.1} s",
            B::NAME,
            seeded.as_secs_f64()
        );
        for analyzed in [false, true] {
            let mode = if analyzed { "analyzed" } else { "stale" };
            if analyzed {
                let t = Instant::now();
                conn.batch_execute("ANALYZE").await?;
                println!(
                    "{:<8}   ANALYZE took {:.1} s",
                    B::NAME,
                    t.elapsed().as_secs_f64()
                );
            }
            let stats = stats_note::<B>(&mut conn).await?;
            let t = time_and_explain(cx, &backend, oid, &format!("finder {state} {mode}")).await?;
            println!(
                "{:<8}   {mode:<8} p50 {:.3} ms p99 {:.3} ms, returned {} | {stats}",
                B::NAME,
                t.p50,
                t.p99,
                t.returned()
            );
            cx.figs.set(
                "finder",
                &format!("{state}: p50 ms ({mode})"),
                B::NAME,
                Some(t.p50),
                &t.returned(),
            );
            cx.figs.set(
                "finder",
                &format!("{state}: p99 ms ({mode})"),
                B::NAME,
                Some(t.p99),
                "",
            );
        }
    }
    Ok(())
}
