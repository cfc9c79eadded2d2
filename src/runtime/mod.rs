//! Envoy's threading model in tokio terms: N worker threads, each a `current_thread`
//! runtime with its own SO_REUSEPORT listener on the proxy port (and one on the TLS port,
//! when configured) and its own upstream pools, so a request and its upstream exchange never
//! leave the thread that accepted it. The kernel spreads new connections over the listeners.
//! Admin, config and signals run on the control runtime (the caller's), never on a worker.

mod connection;
mod plain;
pub(crate) mod server;
pub mod signal;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::proxy::worker::Worker;
use crate::state::Shared;
use crate::tls;
use server::ServeOptions;

/// Pending connections the kernel queues per listener before the shim accepts them.
const BACKLOG: i32 = 4096;

/// The number of workers when `server.worker_threads` is not set: one per core.
#[must_use]
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The process's soft limit on open files (Linux: `/proc/self/limits`), if it can be read.
#[must_use]
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Binds `workers` listening sockets on `addr`, all with SO_REUSEPORT. With port 0 the
/// first one picks the port and the others join it.
///
/// # Errors
/// When a socket cannot be created or bound.
pub fn bind_proxy(addr: SocketAddr, workers: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let first = reuseport_listener(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers.max(1) {
        listeners.push(reuseport_listener(bound)?);
    }
    Ok(listeners)
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Marks its worker stopped when dropped, so whatever ends the thread (a return, a panic)
/// `/readyz` stops answering 200. An earlier, more precise reason is kept.
struct Stopping {
    shared: Arc<Shared>,
    index: usize,
}

impl Drop for Stopping {
    fn drop(&mut self) {
        let reason = if thread::panicking() {
            "its thread panicked"
        } else {
            "its accept loop ended"
        };
        self.shared.readiness().stopped(self.index, reason);
    }
}

/// Running workers; [`Workers::join`] waits until every one has drained and stopped.
#[derive(Debug)]
pub(crate) struct Workers {
    done: Vec<oneshot::Receiver<()>>,
}

impl Workers {
    /// Starts one worker thread per proxy listener; with `tls`, worker `i` also accepts on
    /// TLS listener `i`. Each serves until `stop` turns true, then drains its connections
    /// within `options.grace`. Every client connection, on any worker, holds a permit of
    /// `limit` (`server.max_connections`) while it is open. Each worker marks itself in
    /// `shared`'s readiness: serving when its accept loop starts, stopped when that ends or
    /// the worker cannot start.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub(crate) fn spawn(
        shared: &Arc<Shared>,
        listeners: Vec<std::net::TcpListener>,
        tls: Option<(Vec<std::net::TcpListener>, tls::listener::Acceptor)>,
        limit: &Arc<Semaphore>,
        stop: &watch::Receiver<bool>,
        options: ServeOptions,
    ) -> io::Result<Self> {
        let mut done = Vec::with_capacity(listeners.len());
        shared.readiness().starting(listeners.len());
        let control = shared.clone();
        let (mut tls_listeners, acceptor) = match tls {
            Some((listeners, acceptor)) => (listeners.into_iter(), Some(acceptor)),
            None => (Vec::new().into_iter(), None),
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            let shared = shared.clone();
            let limit = limit.clone();
            let mut stop = stop.clone();
            let tls = tls_listeners.next().zip(acceptor.clone());
            let spawned = thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    // Dropped when the thread ends, even by a panic: join() never hangs.
                    let _done = tx;
                    // Also dropped then: /readyz stops answering 200 for this worker.
                    let _stopping = Stopping {
                        shared: shared.clone(),
                        index,
                    };
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(err) => {
                            tracing::error!(worker = index, error = %err, "Cannot start a worker runtime.");
                            let reason = format!("cannot start its runtime: {err}");
                            shared.readiness().stopped(index, reason);
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let listener = match tokio::net::TcpListener::from_std(listener) {
                            Ok(listener) => listener,
                            Err(err) => {
                                tracing::error!(worker = index, error = %err, "Cannot use the proxy listener.");
                                let reason = format!("cannot use the proxy listener: {err}");
                                shared.readiness().stopped(index, reason);
                                return;
                            }
                        };
                        let tls = tls.map(|(listener, acceptor)| {
                            tokio::net::TcpListener::from_std(listener).map(|l| (l, acceptor))
                        });
                        let tls = match tls.transpose() {
                            Ok(tls) => tls,
                            Err(err) => {
                                tracing::error!(worker = index, error = %err, "Cannot use the TLS listener.");
                                let reason = format!("cannot use the TLS listener: {err}");
                                shared.readiness().stopped(index, reason);
                                return;
                            }
                        };
                        let readiness = shared.clone();
                        let stopped = async move {
                            let _ = stop.wait_for(|stop| *stop).await;
                            // Not ready from the moment accepting ends, before the drain.
                            readiness.readiness().stopped(index, "shutting down");
                        };
                        let worker = Arc::new(Worker::new(shared.clone(), index));
                        worker.spawn_sweeper();
                        // The listeners are listening already (the kernel queues what
                        // arrives); the accept loop starts on the next poll.
                        shared.readiness().serving(index);
                        server::serve_proxy(listener, tls, worker, limit, stopped, options).await;
                    });
                });
            if let Err(err) = spawned {
                let reason = format!("cannot start its thread: {err}");
                control.readiness().stopped(index, reason);
                return Err(err);
            }
            done.push(rx);
        }
        Ok(Self { done })
    }

    /// Waits until every worker has stopped.
    pub(crate) async fn join(self) {
        for done in self.done {
            let _ = done.await;
        }
    }
}
