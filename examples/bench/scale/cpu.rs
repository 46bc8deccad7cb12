//! CPU counters around a part, to tell how busy the rest of the machine
//! was.

use std::time::Instant;

use crate::procstat;
use crate::server::Server;

/// CPU counters, to tell how busy the rest of the machine was.
pub(super) struct Cpu {
    at: Instant,
    machine: Option<u64>,
    me: Option<u64>,
    server: Option<u64>,
}

impl Cpu {
    pub(super) fn sample(server: &Server) -> Cpu {
        Cpu {
            at: Instant::now(),
            machine: procstat::machine_busy_ticks(),
            me: procstat::self_and_children_ticks(),
            server: server.postmaster.and_then(procstat::server_cpu_ticks),
        }
    }

    /// Wall time and the CPU of this process (with its worker processes),
    /// of the server, and of everything else on the machine since `b`.
    pub(super) fn since(&self, b: &Cpu) -> String {
        let ticks = procstat::clock_ticks();
        let d = |x: Option<u64>, y: Option<u64>| Some(x?.saturating_sub(y?) as f64 / ticks);
        let me = d(self.me, b.me);
        let server = d(self.server, b.server);
        let other = match (d(self.machine, b.machine), me, server) {
            (Some(m), Some(c), Some(s)) => format!("{:.1}", (m - c - s).max(0.0)),
            _ => "n/a".to_owned(),
        };
        let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
        format!(
            "part took {:.0} s wall; CPU s: bench {} server {} other processes {other}",
            self.at.duration_since(b.at).as_secs_f64(),
            f(me),
            f(server)
        )
    }
}
