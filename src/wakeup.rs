//! Wakeups: one dedicated `LISTEN` connection per backend (never taken from
//! the query pool), shared by every clone, fanning hints out to waiters.
//!
//! * Writers `pg_notify` in the same statement as their write, so a hint is
//!   delivered at commit and never before its data.
//! * Each hint goes to one waiter (competing consumers). Hints nobody waits
//!   for queue up to [`HINT_QUEUE`]; beyond that they are dropped and counted
//!   (workers still poll).
//! * Waiting is cancel-safe: a dropped `wait` never loses a queued hint.
//! * The listener checks its connection every [`KEEPALIVE`], reconnects with
//!   capped, jittered back-off, and after a reconnect wakes one waiter with
//!   no hint (notifications may have been missed meanwhile).
//! * It stops, closing its connection, when the last backend clone drops.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use sayiir_persistence::TaskWakeupHint;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::pool::ConnectFn;
use crate::telemetry::WakeupCounters;

/// The notification channel. Channels are database-wide, so the name is
/// derived from our schema and never collides with `sayiir-postgres`.
pub const CHANNEL: &str = "sayiir_diesel_task_ready";

/// Hints buffered while no worker waits.
pub const HINT_QUEUE: usize = 16_384;

/// How often an idle listener checks that its connection is alive.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a keep-alive or a (re)subscription may take before the
/// connection is given up on (a half-open TCP connection never answers).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// The receiving end, owned by the backend's shared state.
pub(crate) struct Wakeup {
    rx: flume::Receiver<String>,
    _stop: oneshot::Sender<()>,
}

impl Wakeup {
    /// Subscribes (before returning) and starts the listener task.
    pub(crate) async fn start(
        url: String,
        connect: ConnectFn,
        counters: Arc<WakeupCounters>,
    ) -> Result<Self> {
        let conn = subscribe(&url, &connect).await?;
        let (tx, rx) = flume::bounded(HINT_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(listen(conn, url, connect, tx, stop_rx, counters));
        Ok(Self { rx, _stop: stop_tx })
    }

    /// Waits up to `timeout` for a hint. `None` on timeout, for a wakeup
    /// without hint (oversized payload, reconnect) and for an undecodable
    /// payload (logged). Never fails.
    pub(crate) async fn wait(&self, timeout: Duration) -> Option<TaskWakeupHint> {
        match tokio::time::timeout(timeout, self.rx.recv_async()).await {
            Ok(Ok(payload)) if payload.is_empty() => None,
            Ok(Ok(payload)) => match TaskWakeupHint::decode(&payload) {
                Ok(hint) => Some(hint),
                Err(e) => {
                    tracing::warn!(error = %e, "dropping an undecodable wakeup payload");
                    None
                }
            },
            Ok(Err(_)) => {
                // The listener is gone (backend shutting down): degrade to a timeout.
                tokio::time::sleep(timeout).await;
                None
            }
            Err(_) => None,
        }
    }
}

async fn subscribe(url: &str, connect: &ConnectFn) -> Result<AsyncPgConnection> {
    let attempt = async {
        let mut conn = connect(url).await?;
        conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(conn)
    };
    tokio::time::timeout(CHECK_TIMEOUT, attempt)
        .await
        .map_err(|_| Error::ListenerTimeout {
            waited: CHECK_TIMEOUT,
        })?
}

enum Next {
    Stop,
    Reconnect,
}

async fn listen(
    mut conn: AsyncPgConnection,
    url: String,
    connect: ConnectFn,
    tx: flume::Sender<String>,
    mut stop: oneshot::Receiver<()>,
    counters: Arc<WakeupCounters>,
) {
    loop {
        match pump(&mut conn, &tx, &mut stop, &counters).await {
            Next::Stop => return,
            Next::Reconnect => {}
        }
        tracing::warn!("wakeup listener lost its connection; reconnecting");
        let mut delay = BACKOFF_START;
        conn = loop {
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(jitter(delay)) => {}
            }
            let attempt = tokio::select! {
                _ = &mut stop => return,
                attempt = subscribe(&url, &connect) => attempt,
            };
            match attempt {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, ?delay, "wakeup listener cannot reconnect yet");
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        };
        counters.count_reconnect();
        tracing::info!("wakeup listener reconnected");
        // Notifications sent while we were away are lost: wake a worker to poll.
        if tx.try_send(String::new()).is_err() {
            counters.count_dropped();
        }
    }
}

/// Forwards notifications until the connection fails or the backend stops.
async fn pump(
    conn: &mut AsyncPgConnection,
    tx: &flume::Sender<String>,
    stop: &mut oneshot::Receiver<()>,
    counters: &WakeupCounters,
) -> Next {
    loop {
        let idle = {
            let mut stream = std::pin::pin!(conn.notifications_stream());
            loop {
                tokio::select! {
                    _ = &mut *stop => return Next::Stop,
                    item = tokio::time::timeout(KEEPALIVE, stream.next()) => match item {
                        Err(_) => break true,
                        Ok(Some(Ok(n))) => {
                            match tx.try_send(n.payload) {
                                Ok(()) => counters.count_delivered(),
                                Err(flume::TrySendError::Full(_)) => {
                                    counters.count_dropped();
                                }
                                Err(flume::TrySendError::Disconnected(_)) => return Next::Stop,
                            }
                        }
                        Ok(Some(Err(_)) | None) => break false,
                    }
                }
            }
        };
        if !idle {
            return Next::Reconnect;
        }
        let alive = tokio::select! {
            _ = &mut *stop => return Next::Stop,
            check = tokio::time::timeout(CHECK_TIMEOUT, conn.batch_execute("SELECT 1")) => {
                matches!(check, Ok(Ok(())))
            }
        };
        if !alive {
            return Next::Reconnect;
        }
    }
}

fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    // Up to +25 %.
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}
