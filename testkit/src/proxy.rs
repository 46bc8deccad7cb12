//! A fault-injecting TCP proxy on loopback, for putting one client (a
//! worker process, a backend) behind a link the test controls.
//!
//! [`Proxy::start`] listens on a free `127.0.0.1` port and forwards every
//! connection it accepts to `upstream`. The link is in one of two modes,
//! switched at any time from any thread:
//!
//! * pass ([`Proxy::pass`]): bytes flow both ways;
//! * blackhole ([`Proxy::blackhole`]): connections stay open and new ones
//!   are accepted, but bytes are held (read and kept, plus whatever the
//!   kernel buffers) until the link passes again; then they flow in order.
//!   This is a partition as the client sees it: no error, no answer.
//!
//! [`Proxy::reset`] closes every open connection at once (both sides see
//! the socket close); later connections are accepted as usual. Dropping
//! the proxy stops the listener and closes every connection.
//!
//! The proxy runs on the Tokio runtime it is started from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;

/// What the link does right now (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    blackhole: bool,
    /// Bumped by every reset: connections opened before it close.
    generation: u64,
    /// Set when the proxy is dropped.
    closed: bool,
}

/// A running proxy (see the module docs).
pub struct Proxy {
    port: u16,
    link: Arc<watch::Sender<Link>>,
    open: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> Result<Proxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, _) = watch::channel(Link {
            blackhole: false,
            generation: 0,
            closed: false,
        });
        let link = Arc::new(tx);
        let open = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            Arc::clone(&link),
            Arc::clone(&open),
        ));
        Ok(Proxy {
            port,
            link,
            open,
            accept,
        })
    }

    /// The loopback port clients connect to.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Lets bytes flow (again); held bytes are delivered.
    pub fn pass(&self) {
        self.link.send_modify(|l| l.blackhole = false);
    }

    /// Holds every byte from now on, in both directions, without closing
    /// anything.
    pub fn blackhole(&self) {
        self.link.send_modify(|l| l.blackhole = true);
    }

    /// Closes every connection open now (held bytes are dropped); the mode
    /// is unchanged.
    pub fn reset(&self) {
        self.link.send_modify(|l| l.generation += 1);
    }

    /// Whether bytes are held right now.
    #[must_use]
    pub fn is_blackholed(&self) -> bool {
        self.link.borrow().blackhole
    }

    /// Connections open through the proxy right now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.link.send_modify(|l| l.closed = true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    link: Arc<watch::Sender<Link>>,
    open: Arc<AtomicUsize>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let rx = link.subscribe();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return; // dropping `client` closes it: the server is down
            };
            open.fetch_add(1, Ordering::SeqCst);
            connection(client, server, rx).await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Pumps both directions until both end, a reset, or the proxy's drop.
async fn connection(client: TcpStream, server: TcpStream, rx: watch::Receiver<Link>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let generation = rx.borrow().generation;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, rx.clone(), generation);
    let down = pump(sr, cw, rx, generation);
    tokio::join!(up, down);
}

/// Whether the connection of `generation` must close.
fn doomed(link: &Link, generation: u64) -> bool {
    link.closed || link.generation != generation
}

/// Copies one direction; returns at end of stream, on an I/O error, or
/// when the connection is reset. Bytes read while the link is a blackhole
/// wait here until it passes.
async fn pump<R, W>(mut from: R, mut to: W, mut rx: watch::Receiver<Link>, generation: u64)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            changed = rx.wait_for(|l| doomed(l, generation)) => {
                let _ = changed;
                return;
            }
        };
        // Hold the bytes while the link is a blackhole.
        let go = rx
            .wait_for(|l| !l.blackhole || doomed(l, generation))
            .await
            .map(|l| !doomed(&l, generation))
            .unwrap_or(false);
        if !go {
            return;
        }
        let written = tokio::select! {
            w = to.write_all(&buf[..n]) => w.is_ok(),
            _ = rx.wait_for(|l| doomed(l, generation)) => false,
        };
        if !written {
            return;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::Proxy;

    /// An echo server on loopback.
    async fn echo() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(within, s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    }

    #[tokio::test]
    async fn passes_holds_and_resets() {
        let proxy = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        let second = Duration::from_secs(1);
        assert_eq!(round_trip(&mut s, b"one", second).await.unwrap(), b"one");

        proxy.blackhole();
        assert!(
            round_trip(&mut s, b"two", Duration::from_millis(300))
                .await
                .is_none()
        );
        proxy.pass();
        // The held bytes arrive once the link passes again.
        let mut buf = [0u8; 3];
        tokio::time::timeout(second, s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"two");
        assert_eq!(proxy.connections(), 1);

        proxy.reset();
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(second, s.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        // New connections work after a reset.
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        assert_eq!(
            round_trip(&mut s, b"three", second).await.unwrap(),
            b"three"
        );
    }
}
