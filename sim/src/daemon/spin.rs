//! Adaptive polling before sleeping, for both ends of the daemon socket.
//!
//! A thread that sleeps in `epoll_wait` or `recv` and is woken by the
//! other end pays the wake-up of an idle CPU: tens of microseconds on a
//! virtual machine whose host is idle, against a few for the work of a
//! round trip. So each end first polls for up to a budget (without
//! yielding: a yield on a busy machine hands the CPU to unrelated threads
//! for a whole time slice), and sleeps only after that.
//!
//! Nobody spins while the machine has more threads ready to run than CPUs
//! (/proc/loadavg): there the peer is likely waiting for the very CPU a
//! spinner would hold. Otherwise the budget adapts: a poll that found work
//! within the budget restores it to the maximum; one that ran out, or
//! found work only later (the thread lost the CPU between polls), halves
//! it (down to none); a sleep that ended sooner than the maximum doubles
//! it again.

use std::{
    io,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Budgets under this are not worth a poll.
const MIN: Duration = Duration::from_micros(1);

/// An adaptive spin budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spinner {
    max: Duration,
    budget: Duration,
}

impl Spinner {
    /// A budget of at most `max` (zero: never spin).
    pub(crate) fn new(max: Duration) -> Self {
        Self { max, budget: max }
    }

    /// A budget of at most `max`, currently `budget`.
    pub(crate) fn resume(max: Duration, budget: Duration) -> Self {
        Self { max, budget: budget.min(max) }
    }

    /// The current budget.
    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    /// Calls `poll` until it gives a value or the budget runs out
    /// (`Ok(None)`: go to sleep).
    pub(crate) fn spin<T>(
        &mut self,
        poll: impl FnMut() -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        if !cpu_to_spare() {
            return Ok(None);
        }
        self.spin_anyway(poll)
    }

    /// [`Spinner::spin`] whatever the machine's load.
    fn spin_anyway<T>(
        &mut self,
        mut poll: impl FnMut() -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        if self.budget < MIN {
            return Ok(None);
        }
        let start = Instant::now();
        loop {
            let found = poll()?;
            let late = start.elapsed() >= self.budget;
            if found.is_some() && !late {
                self.budget = self.max;
                return Ok(found);
            }
            if late {
                // Ran out, or found it only after the CPU went to other
                // threads (a loaded machine): spin less next time.
                self.budget /= 2;
                return Ok(found);
            }
            std::hint::spin_loop();
        }
    }

    /// After a sleep of `slept` that ended with work: had it been short,
    /// spinning would have found it.
    pub(crate) fn slept(&mut self, slept: Duration) {
        if slept < self.max && self.max >= MIN {
            self.budget = (self.budget * 2).clamp(MIN, self.max);
        }
    }
}

/// How often the machine's run queue is looked at.
const LOAD_CHECK: Duration = Duration::from_millis(20);

/// Whether spinning can pay: no more threads ready to run than CPUs (the
/// fourth field of /proc/loadavg, `running/total`, counts the spinning
/// threads themselves). On a saturated machine a spinning thread takes
/// the CPU its peer is waiting for; sleeping then wins. Read at most every
/// [`LOAD_CHECK`], and assumed true where /proc cannot tell.
fn cpu_to_spare() -> bool {
    static STATE: Mutex<Option<(Instant, bool)>> = Mutex::new(None);
    let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    match *state {
        Some((at, spare)) if now.duration_since(at) < LOAD_CHECK => spare,
        _ => {
            let spare = runnable().is_none_or(|(ready, cpus)| ready <= cpus);
            *state = Some((now, spare));
            spare
        }
    }
}

/// `(threads ready to run, CPUs)`.
fn runnable() -> Option<(usize, usize)> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let field = text.split_whitespace().nth(3)?;
    let ready = field.split_once('/')?.0.parse().ok()?;
    let cpus = std::thread::available_parallelism().ok()?.get();
    Some((ready, cpus))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_budget_halves_when_spinning_finds_nothing() {
        let max = Duration::from_micros(40);
        let mut s = Spinner::new(max);
        assert_eq!(s.spin_anyway(|| Ok(None::<()>)).unwrap(), None);
        assert_eq!(s.budget, max / 2);
        for _ in 0..10 {
            s.spin_anyway(|| Ok(None::<()>)).unwrap();
        }
        let mut polls = 0;
        let found = s.spin_anyway(|| {
            polls += 1;
            Ok(Some(()))
        });
        assert_eq!(found.unwrap(), None);
        assert_eq!(polls, 0, "no budget left: no poll");
        let low = s.budget;
        assert!(low < MIN, "{low:?}");
        s.slept(Duration::from_micros(10));
        let again = MIN.max(low * 2);
        assert_eq!(s.budget, again, "a short sleep: spin again");
        s.slept(Duration::from_secs(1));
        assert_eq!(s.budget, again, "a long sleep: spinning would not help");
        assert_eq!(s.spin_anyway(|| Ok(Some(7))).unwrap(), Some(7));
        assert_eq!(s.budget, max, "work found: the whole budget again");
    }

    #[test]
    fn test_run_queue_is_read() {
        let (ready, cpus) = runnable().unwrap();
        assert!(ready >= 1, "this thread runs");
        assert!(cpus >= 1);
    }

    #[test]
    fn test_zero_never_spins() {
        let mut s = Spinner::new(Duration::ZERO);
        s.slept(Duration::ZERO);
        let mut polls = 0;
        let found = s.spin_anyway(|| {
            polls += 1;
            Ok(Some(()))
        });
        assert_eq!((found.unwrap(), polls), (None, 0));
    }
}
