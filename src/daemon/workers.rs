//! The password-hashing pool: PBKDF2 (slow on purpose) never runs on the
//! event loop. A fixed number of worker threads take jobs from two bounded
//! queues; when a queue is full a job is refused at once (the caller
//! answers "busy") instead of starting another thread. The console, the
//! management API's password changes and API logins all go through it.
//!
//! Two lanes, so that a flood of logins by strangers cannot keep an
//! administrator out: [`Lane::First`] (the console, signed-in users, logins
//! from an address the user logged in from before) is always taken before
//! [`Lane::Other`] (every other login).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Jobs waiting in the [`Lane::Other`] queue beyond the ones being hashed.
pub const QUEUE: usize = 64;
/// Jobs waiting in the [`Lane::First`] queue (as many: the console and the
/// API's password changes had the whole queue before there were lanes).
pub const FIRST_QUEUE: usize = 64;

/// Which queue a job waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Work for someone already trusted: taken first.
    First,
    /// Logins nobody vouches for yet.
    Other,
}

#[derive(Default)]
struct Queues {
    first: VecDeque<Job>,
    other: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

/// Closes the queues when the last [`HashPool`] handle goes.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        if let Ok(mut q) = self.0.queues.lock() {
            q.closed = true;
        }
        self.0.ready.notify_all();
    }
}

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct HashPool {
    shared: Arc<Closer>,
}

/// The queue was full (or the workers are gone): try again later.
#[derive(Debug)]
pub struct Busy;

/// Nice value of the hashing threads (the loop runs at 0).
const WORKER_NICE: i32 = 10;

fn next_job(shared: &Shared) -> Option<Job> {
    let mut q = shared.queues.lock().ok()?;
    loop {
        if let Some(job) = q.first.pop_front().or_else(|| q.other.pop_front()) {
            return Some(job);
        }
        if q.closed {
            return None;
        }
        q = shared.ready.wait(q).ok()?;
    }
}

impl HashPool {
    /// Starts `workers` threads (at least one).
    pub fn start(workers: usize) -> std::io::Result<HashPool> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
        });
        for i in 0..workers.max(1) {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("kpbxd-hash{i}"))
                .spawn(move || {
                    // Below the event loop: on a two-core box a hash in
                    // progress must not take the loop's turn (heartbeats,
                    // the console). Linux keeps a nice value per thread.
                    if let Err(e) = rustix::process::setpriority_process(None, WORKER_NICE) {
                        log::warn!("hashing thread: cannot lower its priority: {e}");
                    }
                    while let Some(job) = next_job(&shared) {
                        job();
                    }
                })?;
        }
        Ok(HashPool {
            shared: Arc::new(Closer(shared)),
        })
    }

    /// One worker per core but one (the loop keeps a core), at most two.
    pub fn workers_for_this_box() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .clamp(1, 2)
    }

    /// Queues `job` in the first lane (the console, signed-in users).
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        self.submit_in(Lane::First, job)
    }

    /// Queues `job` in `lane`, or refuses it at once when that queue is full.
    pub fn submit_in(&self, lane: Lane, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        let shared = &self.shared.0;
        let mut q = shared.queues.lock().map_err(|_| Busy)?;
        let (queue, cap) = match lane {
            Lane::First => (&mut q.first, FIRST_QUEUE),
            Lane::Other => (&mut q.other, QUEUE),
        };
        if queue.len() >= cap {
            return Err(Busy);
        }
        queue.push_back(Box::new(job));
        drop(q);
        shared.ready.notify_one();
        Ok(())
    }

    /// Runs `f` in `lane` and awaits its result (`None`: busy).
    pub async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = smol::channel::bounded(1);
        self.submit_in(lane, move || {
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
            pool.submit_in(Lane::Other, || {}).unwrap();
        }
        assert!(
            pool.submit_in(Lane::Other, || {}).is_err(),
            "queue is bounded"
        );
        hold_tx.send(()).unwrap();
        // Drained by the worker: accepted again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let answer = loop {
            if let Some(v) = smol::block_on(pool.run(Lane::Other, || 7)) {
                break Some(v);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(answer, Some(7));
    }

    #[test]
    fn the_first_lane_overtakes_a_full_queue_of_strangers() {
        let pool = HashPool::start(1).unwrap();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        pool.submit_in(Lane::Other, move || {
            let _ = started_tx.send(());
            let _ = hold_rx.recv();
        })
        .unwrap();
        started_rx.recv().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..QUEUE {
            let order = Arc::clone(&order);
            pool.submit_in(Lane::Other, move || order.lock().unwrap().push(i))
                .unwrap();
        }
        let first = Arc::clone(&order);
        pool.submit(move || first.lock().unwrap().push(usize::MAX))
            .expect("the first lane has room while the other is full");
        hold_tx.send(()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while order.lock().unwrap().len() < QUEUE + 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), QUEUE + 1);
        assert_eq!(order[0], usize::MAX, "taken before the strangers' logins");
    }

    #[test]
    fn workers_end_with_the_last_handle() {
        let pool = HashPool::start(2).unwrap();
        let weak = Arc::downgrade(&pool.shared.0);
        drop(pool);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while weak.strong_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(weak.strong_count(), 0, "worker threads exited");
    }
}
