//! A mutex with priority inheritance, for the one lock the real-time HA
//! thread shares with the event loop (`daemon::ha`).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// A mutex with priority inheritance (a Linux PI futex): while a thread of
/// ordinary priority (the event loop) holds it, a real-time thread that
/// waits for it (the HA thread) lends it its priority, so the holder runs
/// at once instead of waiting for a core behind the box's load. With the
/// plain mutex, a loop preempted inside its short critical section held
/// the heartbeats for as long as it waited for a core (tens of ms and more
/// at load 10+; issue 17, item 6). The word is 0 or the holder's thread id
/// (the kernel sets the waiters bit); see futex(2), "Priority-inheritance
/// futexes". Not reentrant, no poisoning.
pub struct PiMutex<T> {
    word: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and one guard exists
// at a time (the futex protocol); T moves between threads with it.
unsafe impl<T: Send> Sync for PiMutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for PiMutex<T> {}

pub struct PiGuard<'a, T> {
    m: &'a PiMutex<T>,
    tid: u32,
    /// Unlocked by the thread that locked it (the kernel checks).
    _not_send: std::marker::PhantomData<*const ()>,
}

const FUTEX_LOCK_PI_PRIVATE: libc::c_int = 6 | 128;
const FUTEX_UNLOCK_PI_PRIVATE: libc::c_int = 7 | 128;

fn thread_id() -> u32 {
    thread_local! {
        static TID: u32 = {
            // SAFETY: gettid has no arguments and cannot fail.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            u32::try_from(tid).unwrap_or(0)
        };
    }
    TID.with(|t| *t)
}

impl<T> PiMutex<T> {
    pub fn new(value: T) -> PiMutex<T> {
        PiMutex {
            word: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> PiGuard<'_, T> {
        let tid = thread_id();
        if self
            .word
            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            loop {
                // SAFETY: the word outlives the call; the kernel reads and
                // writes it atomically (FUTEX_LOCK_PI takes no other argument
                // here: no timeout).
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        self.word.as_ptr(),
                        FUTEX_LOCK_PI_PRIVATE,
                        0,
                        std::ptr::null::<libc::timespec>(),
                    )
                };
                if rc == 0 {
                    break;
                }
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR | libc::EAGAIN) => {}
                    // No PI futexes here: take it by spinning politely.
                    _ => {
                        while self
                            .word
                            .compare_exchange(0, tid, Ordering::Acquire, Ordering::Relaxed)
                            .is_err()
                        {
                            std::thread::yield_now();
                        }
                        break;
                    }
                }
            }
        }
        PiGuard {
            m: self,
            tid,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl<T> Drop for PiGuard<'_, T> {
    fn drop(&mut self) {
        if self
            .m
            .word
            .compare_exchange(self.tid, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Waiters: the kernel hands the lock to the highest-priority one.
            // SAFETY: as in `lock`.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.m.word.as_ptr(),
                    FUTEX_UNLOCK_PI_PRIVATE,
                    0,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
    }
}

impl<T> std::ops::Deref for PiGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `lock`).
        unsafe { &*self.m.value.get() }
    }
}

impl<T> std::ops::DerefMut for PiGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one (see `lock`).
        unsafe { &mut *self.m.value.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn contended_lock_keeps_every_increment() {
        // Four threads fight for the lock, so most acquisitions go through
        // FUTEX_LOCK_PI and most releases through FUTEX_UNLOCK_PI.
        let m = Arc::new(PiMutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut g = m.lock();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 80_000);
        assert_eq!(m.word.load(Ordering::Relaxed), 0, "released: no owner left");
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_drops_it() {
        let m = Arc::new(PiMutex::new(Vec::<u8>::new()));
        let g = m.lock();
        let m2 = m.clone();
        let waiter = std::thread::spawn(move || m2.lock().push(2));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "the waiter blocks while the lock is held"
        );
        drop(g);
        waiter.join().unwrap();
        m.lock().push(3);
        assert_eq!(*m.lock(), vec![2, 3]);
    }
}
