//! The dispatch part: delays ending at one moment, driven by worker
//! processes; seconds from the wake until every workflow is Completed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::Double;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_runtime::WorkflowClient;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Ctx, count_label};
use crate::Error;
use crate::args::{Args, ScaleArgs};
use crate::backends::Backend;
use crate::monitor::Monitor;
use crate::seed::Seeder;
use crate::server::TAG;
use crate::workers;
use crate::workloads::{self, Probe};

pub(super) async fn dispatch_part<B: Backend>(cx: &mut Ctx<'_>, procs: usize) -> Result<(), Error> {
    let db = format!(
        "sayiir_scale_{}_dispatch{procs}_{}",
        std::process::id(),
        B::NAME
    );
    cx.server.create_database(&db).await?;
    let r = dispatch_run::<B>(cx, &db, procs).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

#[derive(QueryableByName)]
struct Secs {
    #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
    s: Option<f64>,
}

/// A worker process: this program with `--dispatch-child`.
struct Child {
    proc: tokio::process::Child,
    out: BufReader<tokio::process::ChildStdout>,
}

async fn dispatch_run<B: Backend>(cx: &mut Ctx<'_>, db: &str, procs: usize) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let n = cx.sa.delays as u64;
    let nap = cx.sa.delay;
    // The template parks through the API with one in-process worker.
    {
        let backend = B::open(&url, cx.args.pool).await?;
        let probe = Probe::new(1);
        let wf = Arc::new(workloads::delayed(&probe, nap)?);
        let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
        let workers = workers::spawn_named(&backend, cx.args, &registry, "template", 1);
        WorkflowClient::new(backend.clone())
            .submit(&*wf, "dtemplate0", workloads::input(0))
            .await?;
        let mut monitor = Monitor::open(&url, B::TABLE).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while monitor.count("InProgress", Some("AtDelay")).await? < 1 {
            if Instant::now() > deadline {
                return Err("the dispatch template did not park within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(e) = workers::stop(workers).await.into_iter().next() {
            return Err(format!("template worker: {e}").into());
        }
    }
    let seeded = Seeder::open(&url)
        .await?
        .copy(B::TABLES, "dtemplate0", "d", 1, n - 1)
        .await?;
    let mut children = Vec::new();
    for p in 0..procs {
        children.push(spawn_child(B::NAME, &url, nap, p, cx.args, cx.sa)?);
    }
    let ready = async {
        for c in &mut children {
            let mut line = String::new();
            c.out.read_line(&mut line).await?;
            if line.trim() != "ready" {
                return Err::<(), Error>(format!("worker process said {line:?}").into());
            }
        }
        Ok(())
    };
    let measured = async {
        tokio::time::timeout(Duration::from_secs(120), ready)
            .await
            .map_err(|_| "worker processes not ready within 120 s")??;
        let mut conn = AsyncPgConnection::establish(&url).await?;
        let left = diesel::sql_query(format!(
            "{TAG} SELECT extract(epoch FROM (w.t - clock_timestamp()))::float8 AS s FROM ({}) AS w",
            B::FIRST_WAKE_SQL
        ))
        .get_result::<Secs>(&mut conn)
        .await?
        .s
        .ok_or("no parked delay found")?;
        if left < 0.2 {
            return Err::<(Duration, Duration, f64, Duration), Error>(
                format!(
                    "the delays ended {:.1} s before the worker processes were ready \
                     (seeding took {:.1} s): raise --scale-delay-s",
                    -left,
                    seeded.as_secs_f64()
                )
                .into(),
            );
        }
        let wake = Instant::now() + Duration::from_secs_f64(left);
        let mut monitor = Monitor::open(&url, B::TABLE).await?;
        let deadline = wake + cx.args.timeout;
        let mut first = None;
        let mut half = None;
        loop {
            let done = u64::try_from(monitor.count("Completed", None).await?)?;
            let now = Instant::now();
            if done > 0 && first.is_none() {
                first = Some(now);
            }
            if done * 2 >= n && half.is_none() {
                half = Some(now);
            }
            if done >= n {
                let since = |t: Option<Instant>| t.unwrap_or(now).saturating_duration_since(wake);
                return Ok((since(first), since(half), left, now.saturating_duration_since(wake)));
            }
            if now > deadline {
                return Err(format!("timed out: {done} of {n} Completed").into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    .await;
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for mut c in children {
        drop(c.proc.stdin.take());
        let mut note = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), c.out.read_line(&mut note)).await;
        notes.push(format!("[{}]", note.trim()));
        match tokio::time::timeout(Duration::from_secs(60), c.proc.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => errors.push(format!("worker process exited with {status}")),
            Ok(Err(e)) => errors.push(format!("worker process: {e}")),
            Err(_) => {
                let _ = c.proc.kill().await;
                errors.push("worker process did not exit within 60 s".to_owned());
            }
        }
    }
    let (first, half, left, all) = measured?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    let label = format!(
        "{} delays, {procs} process(es) x {} workers",
        count_label(n),
        cx.sa.proc_workers
    );
    println!(
        "{:<8} dispatch, {label}: seeded in {:.1} s, workers ready {left:.1} s before the wake; \
         first Completed {:.2} s after it, half {:.2} s, all {:.2} s ({:.0} workflows/s)",
        B::NAME,
        seeded.as_secs_f64(),
        first.as_secs_f64(),
        half.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    println!("{:<8}   worker processes: {}", B::NAME, notes.join(" "));
    cx.figs.set(
        "dispatch",
        &format!("{label}: s wake -> all Completed"),
        B::NAME,
        Some(all.as_secs_f64()),
        &format!("{:.0}/s", n as f64 / all.as_secs_f64()),
    );
    cx.figs.set(
        "dispatch",
        &format!("{label}: s wake -> half Completed"),
        B::NAME,
        Some(half.as_secs_f64()),
        "",
    );
    Ok(())
}

fn spawn_child(
    backend: &str,
    url: &str,
    nap: Duration,
    proc: usize,
    args: &Args,
    sa: &ScaleArgs,
) -> Result<Child, Error> {
    let exe = std::env::current_exe()?;
    let mut proc = tokio::process::Command::new(exe)
        .arg("--dispatch-child")
        .args([
            backend.to_owned(),
            url.to_owned(),
            nap.as_millis().to_string(),
            sa.proc_workers.to_string(),
            proc.to_string(),
            args.pool.to_string(),
            args.poll.as_millis().to_string(),
            args.batch.to_string(),
            args.claim_ttl.as_secs().to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = BufReader::new(proc.stdout.take().ok_or("worker process without stdout")?);
    Ok(Child { proc, out })
}
