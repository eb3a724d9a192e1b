//! The password-hashing pool: PBKDF2 (slow on purpose) never runs on the
//! event loop. A fixed number of worker threads take jobs from one bounded
//! queue; when the queue is full a job is refused at once (the caller
//! answers "busy") instead of starting another thread. The console, the
//! management API's password changes and API logins all go through it.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Jobs waiting beyond the ones being hashed.
pub const QUEUE: usize = 64;

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct HashPool {
    jobs: SyncSender<Job>,
}

/// The queue was full (or the workers are gone): try again later.
#[derive(Debug)]
pub struct Busy;

/// Nice value of the hashing threads (the loop runs at 0).
const WORKER_NICE: i32 = 10;

impl HashPool {
    /// Starts `workers` threads (at least one).
    pub fn start(workers: usize) -> std::io::Result<HashPool> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("kpbxd-hash{i}"))
                .spawn(move || {
                    // Below the event loop: on a two-core box a hash in
                    // progress must not take the loop's turn (heartbeats,
                    // the console). Linux keeps a nice value per thread.
                    if let Err(e) = rustix::process::setpriority_process(None, WORKER_NICE) {
                        log::warn!("hashing thread: cannot lower its priority: {e}");
                    }
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every handle dropped
                        }
                    }
                })?;
        }
        Ok(HashPool { jobs: tx })
    }

    /// One worker per core but one (the loop keeps a core), at most two.
    pub fn workers_for_this_box() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .clamp(1, 2)
    }

    /// Queues `job`, or refuses it at once when the queue is full.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        match self.jobs.try_send(Box::new(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Runs `f` on the pool and awaits its result (`None`: busy).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = smol::channel::bounded(1);
        self.submit(move || {
            let _ = tx.send_blocking(f());
        })
        .ok()?;
        rx.recv().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_queue_refuses_instead_of_growing() {
        let pool = HashPool::start(1).unwrap();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        // Block the only worker.
        pool.submit(move || {
            let _ = started_tx.send(());
            let _ = hold_rx.recv();
        })
        .unwrap();
        started_rx.recv().unwrap();
        for _ in 0..QUEUE {
            pool.submit(|| {}).unwrap();
        }
        assert!(pool.submit(|| {}).is_err(), "queue is bounded");
        hold_tx.send(()).unwrap();
        // Drained by the worker: accepted again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let answer = loop {
            if let Some(v) = smol::block_on(pool.run(|| 7)) {
                break Some(v);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(answer, Some(7));
    }
}
