//! The user side: submits workflows, sends events (before and after the
//! park), cancels, pauses and unpauses at random, all seeded; then drains
//! until every workflow has settled.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sayiir_core::workflow::WorkflowStatus;
use sayiir_runtime::WorkflowClient;

use crate::tasklog::now_ms;
use crate::workflows::{Backend, Shape, event_payload, json};

/// What the driver did to one workflow.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: String,
    pub shape: Shape,
    pub n: u64,
    /// Event shape: per event ("a", "b"), whether it is sent before the
    /// park (right away) rather than once the workflow waits for it.
    pub early: [bool; 2],
    /// Event sends that returned Ok, by name index.
    pub sent: [u32; 2],
    /// A send that failed: it may or may not have been stored.
    pub ambiguous: bool,
    /// Held back: its events wait for a user action (strict checks).
    pub hold: bool,
    /// A cancel was accepted at this time (ms); `strict` when the workflow
    /// was parked waiting for an event the driver held back.
    pub cancelled: Option<(u64, bool)>,
    /// The last accepted pause (ms, strict), cleared by an accepted unpause.
    pub paused: Option<(u64, bool)>,
    pub pauses: u32,
    pub unpauses: u32,
    /// When to unpause (ms), once the pause has applied.
    unpause_at: Option<u64>,
    pub last: Option<Seen>,
    next_poll: u64,
}

/// The last status the driver read, in short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Finished,
    Paused,
    Running,
}

impl Track {
    pub fn settled(&self) -> bool {
        match self.last {
            Some(Seen::Finished) => true,
            Some(Seen::Paused) => self.paused.is_some() && self.unpause_at.is_none(),
            _ => false,
        }
    }
}

pub struct Driver {
    pub client: WorkflowClient<Backend>,
    rng: StdRng,
    pub tracks: Vec<Track>,
    corrupt: Option<String>,
    pub errors: u64,
    dropped_event: bool,
}

async fn retry<T, F, Fut>(mut op: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sayiir_runtime::error::RuntimeError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

impl Driver {
    pub fn new(client: WorkflowClient<Backend>, seed: u64, corrupt: Option<String>) -> Driver {
        Driver {
            client,
            rng: StdRng::seed_from_u64(seed),
            tracks: Vec::new(),
            corrupt,
            errors: 0,
            dropped_event: false,
        }
    }

    pub async fn submit(&mut self) {
        let k = self.tracks.len() as u64 + 1;
        let shape = match self.rng.random_range(0..100) {
            0..22 => Shape::Linear,
            22..40 => Shape::ForkJoin,
            40..55 => Shape::Delay,
            55..75 => Shape::Event,
            75..90 => Shape::Retry,
            _ => Shape::Loop,
        };
        let id = format!("{}-{k}", shape.name());
        let wf = shape.workflow();
        let early = [self.rng.random_bool(0.5), self.rng.random_bool(0.5)];
        let hold = shape == Shape::Event && self.rng.random_bool(0.15);
        let submitted = retry(|| self.client.submit(&*wf, id.clone(), k)).await;
        if let Err(e) = submitted {
            eprintln!("submit {id}: {e}");
            self.errors += 1;
            return;
        }
        self.tracks.push(Track {
            id,
            shape,
            n: k,
            early,
            sent: [0, 0],
            ambiguous: false,
            hold,
            cancelled: None,
            paused: None,
            pauses: 0,
            unpauses: 0,
            unpause_at: None,
            last: None,
            next_poll: 0,
        });
        let i = self.tracks.len() - 1;
        if shape == Shape::Event && !hold && early[0] {
            self.send(i, 0).await;
            if early[1] {
                self.send(i, 1).await;
            }
        }
    }

    async fn send(&mut self, i: usize, which: usize) {
        let name = ["a", "b"][which];
        let t = &mut self.tracks[i];
        if t.sent[which] > 0 {
            return;
        }
        let payload = json(event_payload(t.n, name));
        let id = t.id.clone();
        // --corrupt drop-event: one event is recorded as sent but never is.
        if self.corrupt.as_deref() == Some("drop-event") && !self.dropped_event {
            self.dropped_event = true;
            t.sent[which] += 1;
            return;
        }
        let times = if self.corrupt.as_deref() == Some("double-event") && t.n.is_multiple_of(7) {
            2
        } else {
            1
        };
        for _ in 0..times {
            match self.client.send_event(&id, name, payload.clone()).await {
                Ok(()) => self.tracks[i].sent[which] += 1,
                Err(e) => {
                    eprintln!("send_event {id} {name}: {e} (ambiguous, not retried)");
                    self.tracks[i].ambiguous = true;
                    self.tracks[i].sent[which] += 1;
                    self.errors += 1;
                }
            }
        }
    }

    /// Random user actions on live workflows.
    pub async fn act(&mut self) {
        if self.tracks.is_empty() {
            return;
        }
        let live: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !self.tracks[i].settled() && self.tracks[i].cancelled.is_none())
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.rng.random_range(0..live.len())];
        let roll = self.rng.random_range(0..100);
        let id = self.tracks[i].id.clone();
        if roll < 40 && self.tracks[i].paused.is_none() {
            let r = self
                .client
                .cancel(&id, Some("soak".into()), Some("driver".into()))
                .await;
            // An error may still have stored the request: counted as
            // accepted either way (the check then allows both outcomes).
            if let Err(e) = r {
                eprintln!("cancel {id}: {e}");
                self.errors += 1;
            }
            self.tracks[i].cancelled = Some((now_ms(), false));
        } else if self.tracks[i].paused.is_none() {
            let r = self
                .client
                .pause(&id, Some("soak".into()), Some("driver".into()))
                .await;
            if let Err(e) = r {
                eprintln!("pause {id}: {e}");
                self.errors += 1;
            }
            let t = &mut self.tracks[i];
            t.paused = Some((now_ms(), false));
            t.pauses += 1;
            // Mostly unpaused again a little later; sometimes left.
            if self.rng.random_bool(0.7) {
                t.unpause_at = Some(now_ms() + self.rng.random_range(500..4000));
            }
        }
    }

    /// Polls a share of the live workflows: events after the park, held
    /// workflows' actions, unpauses.
    pub async fn poll(&mut self, budget: usize) {
        let now = now_ms();
        let due: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !self.tracks[i].settled() && self.tracks[i].next_poll <= now)
            .take(budget)
            .collect();
        for i in due {
            self.tracks[i].next_poll = now + 400;
            let id = self.tracks[i].id.clone();
            let Ok(status) = self.client.status(&id).await else {
                continue;
            };
            self.tracks[i].last = Some(match status {
                WorkflowStatus::Completed
                | WorkflowStatus::Failed(_)
                | WorkflowStatus::Cancelled { .. } => Seen::Finished,
                WorkflowStatus::Paused { .. } => Seen::Paused,
                _ => Seen::Running,
            });
            let t = &self.tracks[i];
            match status {
                WorkflowStatus::AwaitingSignal { signal_name, .. } => {
                    let which = usize::from(signal_name == "b");
                    if t.hold {
                        if t.cancelled.is_none() && t.paused.is_none() {
                            self.hold_action(i).await;
                        }
                    } else if t.sent[which] == 0 {
                        self.send(i, which).await;
                        if which == 0 && self.tracks[i].early[1] {
                            self.send(i, 1).await;
                        }
                    }
                }
                WorkflowStatus::Paused { .. } => {
                    if let Some(at) = t.unpause_at
                        && at <= now
                    {
                        match self.client.unpause(&id).await {
                            Ok(()) => {
                                let t = &mut self.tracks[i];
                                t.paused = None;
                                t.unpause_at = None;
                                t.unpauses += 1;
                                if t.hold {
                                    // Released: its events now flow.
                                    t.hold = false;
                                }
                            }
                            Err(e) => {
                                eprintln!("unpause {id}: {e}");
                                self.errors += 1;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A held workflow waits for its event: cancel it or pause it (strict:
    /// it cannot finish on its own).
    async fn hold_action(&mut self, i: usize) {
        let id = self.tracks[i].id.clone();
        if self.rng.random_bool(0.5) {
            let r = self
                .client
                .cancel(&id, Some("held".into()), Some("driver".into()))
                .await;
            // Strict only when the request surely went in.
            if let Err(e) = &r {
                eprintln!("cancel {id}: {e}");
                self.errors += 1;
            }
            self.tracks[i].cancelled = Some((now_ms(), r.is_ok()));
        } else {
            let r = self
                .client
                .pause(&id, Some("held".into()), Some("driver".into()))
                .await;
            if let Err(e) = &r {
                eprintln!("pause {id}: {e}");
                self.errors += 1;
            }
            let unpause = self.rng.random_bool(0.5);
            let at = now_ms() + self.rng.random_range(500..3000);
            let t = &mut self.tracks[i];
            t.paused = Some((now_ms(), r.is_ok()));
            t.pauses += 1;
            if unpause {
                t.unpause_at = Some(at);
            }
        }
    }

    /// Drain: no new work, no new random actions; keep sending events and
    /// unpausing until every workflow settles or `limit` passes.
    pub async fn drain(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        // Every remaining scheduled unpause happens soon.
        for t in &mut self.tracks {
            if let Some(at) = t.unpause_at.as_mut() {
                *at = (*at).min(now_ms() + 500);
            }
        }
        loop {
            self.poll(usize::MAX).await;
            if self.tracks.iter().all(Track::settled) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
