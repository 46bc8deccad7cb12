//! The measured part of a run as the client sees it: submit every
//! workflow, send the `signal` events, wait until all are Completed; and
//! the untimed seeding of parked giants before it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sayiir_runtime::WorkflowClient;

use crate::args::{Args, Workload};
use crate::backends::Backend;
use crate::monitor::Monitor;
use crate::workers::{spawn_workers, stop};
use crate::workloads::{self, EVENT, Probe, STRIDE, Wf, input};
use crate::{Error, procstat};

/// Submits every workflow (sending events meanwhile for `signal`) and
/// waits until all are Completed; returns first submit → last completion,
/// and this process's VmRSS each time another tenth of the workflows ran
/// their last step.
pub async fn drive<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    wf: &Wf,
    probe: &Probe,
    args: &Args,
    workload: Workload,
) -> (Result<Duration, Error>, Vec<(usize, f64)>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let deadline = Instant::now() + args.timeout;
    let sample = async {
        let mut deciles = Vec::new();
        let mut next = 1;
        while next <= 10 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if Instant::now() > deadline {
                break;
            }
            while next <= 10 && probe.finished_count() * 10 >= args.workflows * next {
                if let Some(mib) = procstat::status_mib("VmRSS") {
                    deciles.push((next * 10, mib));
                }
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        deciles
    };
    let driven = async {
        let r = drive_all(client, monitor, wf, probe, args, workload, deadline).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    };
    tokio::join!(driven, sample)
}

async fn drive_all<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    wf: &Wf,
    probe: &Probe,
    args: &Args,
    workload: Workload,
    deadline: Instant,
) -> Result<Duration, Error> {
    let n = args.workflows;
    let start = Instant::now();
    let submit = async {
        for i in 0..n {
            if workload == Workload::Idle {
                // One at a time: the fleet has gone back to waiting.
                while probe.finished_count() < i {
                    if Instant::now() > deadline {
                        return Err(format!("timed out: idle workflow {i} of {n}").into());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            probe.submitting(i);
            client.submit(wf, format!("wf{i}"), input(i)).await?;
        }
        Ok::<(), Error>(())
    };
    let events = async {
        if workload == Workload::Signal {
            send_events(client, &mut *monitor, n, deadline).await
        } else {
            Ok(())
        }
    };
    let (submitted, sent) = tokio::join!(submit, events);
    submitted?;
    sent?;
    tokio::time::timeout_at(deadline.into(), probe.wait_all())
        .await
        .map_err(|_| {
            format!(
                "timed out: {} of {n} workflows ran their last step",
                probe.finished_count()
            )
        })?;
    // The final Completed save follows the last step: watch for it.
    loop {
        let completed = monitor.count("Completed", None).await?;
        if usize::try_from(completed)? >= n {
            return Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out: {completed} of {n} workflows Completed").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Events the signal workload's sender has in flight at once.
const EVENTS_IN_FLIGHT: usize = 8;

/// Sends its event to every workflow seen parked at the signal, once.
async fn send_events<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    n: usize,
    deadline: Instant,
) -> Result<(), Error> {
    let mut sent = HashSet::new();
    while sent.len() < n {
        if Instant::now() > deadline {
            return Err(format!("timed out: {} of {n} events sent", sent.len()).into());
        }
        let mut due = Vec::new();
        for id in monitor.parked("AtSignal").await? {
            if sent.contains(&id) {
                continue;
            }
            let Some(i) = id.strip_prefix("wf").and_then(|s| s.parse::<usize>().ok()) else {
                continue;
            };
            let payload = Bytes::from(serde_json::to_vec(&(input(i) + STRIDE / 2))?);
            due.push((id, payload));
        }
        let fresh = due.len();
        // Sent EVENTS_IN_FLIGHT at a time, as many callers would: one at a
        // time, each waiting for its commit, the sender itself would set
        // the pace of both backends.
        let delivered: Vec<String> = futures_util::stream::iter(due)
            .map(|(id, payload)| async move {
                client.send_event(&id, EVENT, payload).await?;
                Ok::<_, Error>(id)
            })
            .buffer_unordered(EVENTS_IN_FLIGHT)
            .try_collect()
            .await?;
        sent.extend(delivered);
        if fresh == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Submits `n` giants and waits until all of them are parked on their delay.
pub async fn seed_giants<B: Backend>(
    backend: &B,
    args: &Args,
    url: &str,
    n: usize,
) -> Result<(), Error> {
    let probe = Probe::new(n);
    let wf = Arc::new(workloads::giant(&probe)?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers = spawn_workers(backend, args, &registry);
    let client = WorkflowClient::new(backend.clone());
    let deadline = Instant::now() + args.timeout;
    let seeded = async {
        futures_util::stream::iter(0..n)
            .map(|i| {
                let (client, wf) = (&client, &wf);
                async move {
                    client
                        .submit(&**wf, format!("giant{i}"), input(i))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(8)
            .try_collect::<()>()
            .await?;
        tokio::time::timeout_at(deadline.into(), probe.wait_all())
            .await
            .map_err(|_| format!("seeding giants: {} of {n} ran", probe.finished_count()))?;
        let mut monitor = Monitor::open(url, B::TABLE).await?;
        loop {
            let parked = monitor.count("InProgress", Some("AtDelay")).await?;
            if usize::try_from(parked)? >= n {
                return Ok::<(), Error>(());
            }
            if Instant::now() > deadline {
                return Err(format!("seeding giants: {parked} of {n} parked").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    .await;
    let errors = stop(workers).await;
    seeded?;
    match errors.first() {
        Some(e) => Err(format!("seeding giants: worker error: {e}").into()),
        None => Ok(()),
    }
}
