//! State kept per thread: what every request writes (the WAF's DFA caches and memos, the log
//! batch, the request counters, the idle upstream connections, the round-robin position) is
//! written by one core only.
//!
//! A value that every proxy thread writes with every request, even an atomic counter or an
//! uncontended lock, sends its cache line from core to core each time: on two cores that cost
//! the WAF a tenth of a GET. Each thread instead takes a slot by the number it drew on its first
//! call, and readers that need the whole (a flush, a scrape) visit every slot.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The slots of a [`PerThread`]. Threads past this many share slots (correctly, as every slot
/// is `Sync`, only no longer alone).
pub(crate) const SLOTS: usize = 64;

/// One value per thread (up to [`SLOTS`] threads), each on cache lines of its own.
pub(crate) struct PerThread<T> {
    slots: Box<[Padded<T>]>,
}

/// Two cache lines, so that not even the adjacent-line prefetcher couples two slots.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> PerThread<T> {
    pub(crate) fn new(mut make: impl FnMut() -> T) -> Self {
        PerThread {
            slots: (0..SLOTS).map(|_| Padded(make())).collect(),
        }
    }

    /// The calling thread's value.
    pub(crate) fn mine(&self) -> &T {
        &self.slots[slot()].0
    }

    /// Every thread's value, for a reader of the whole.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &slot.0)
    }
}

/// The calling thread's slot.
fn slot() -> usize {
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = THREADS.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|slot| *slot)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[test]
    fn each_thread_writes_its_own_slot_and_the_reader_sees_all() {
        let counts = PerThread::new(|| AtomicU64::new(0));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counts.mine().fetch_add(1, Ordering::Relaxed);
                    }
                    assert_eq!(counts.mine().load(Ordering::Relaxed) % 1000, 0);
                });
            }
        });
        let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 4000);
        let used = counts.iter().filter(|c| c.load(Ordering::Relaxed) > 0);
        assert!(used.count() >= 2, "threads drew different slots");
    }
}
