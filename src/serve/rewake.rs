//! A connection woken while it is being polled is polled again at once,
//! in place, instead of going back through the runtime's scheduler.
//!
//! hyper wakes a connection's task from inside that task's own poll: the
//! request body's channel wakes its sender (the connection) whenever the
//! handler takes a chunk, and a signed route's handler reads the body on
//! the connection's task. tokio counts a wake during the poll as a yield:
//! the task goes to the back of the worker's queue and another worker is
//! unparked (a futex wake, and often the task then runs there). Polled
//! again here, the work is the same and neither happens.
//!
//! Fairness stays tokio's: at most `AGAIN` polls in place per poll the
//! runtime makes, and none once the task has spent its cooperative budget;
//! past that the wake is passed on and the task yields as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Polls in place after a wake during the poll, per poll by the runtime.
const AGAIN: usize = 4;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// `inner`, polled again at once when it wakes itself.
pub struct Rewake<F> {
    inner: F,
    shared: Arc<Shared>,
    /// A waker on `shared`, made once.
    waker: Waker,
}

struct Shared {
    state: AtomicU8,
    /// The task's own waker, for wakes outside a poll.
    task: Mutex<Option<Waker>>,
}

impl<F> Rewake<F> {
    pub fn new(inner: F) -> Rewake<F> {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            task: Mutex::new(None),
        });
        let waker = Waker::from(Arc::clone(&shared));
        Rewake {
            inner,
            shared,
            waker,
        }
    }

    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    pub fn into_inner(self) -> F {
        self.inner
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // The poll under way sees it when it ends.
            Ok(_) | Err(WOKEN) => {}
            Err(_) => {
                let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(task) = task.as_ref() {
                    task.wake_by_ref();
                }
            }
        }
    }
}

impl<F: Future + Unpin> Future for Rewake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut task = this.shared.task.lock().unwrap_or_else(|e| e.into_inner());
            match task.as_ref() {
                Some(t) if t.will_wake(cx.waker()) => {}
                _ => *task = Some(cx.waker().clone()),
            }
        }
        let mut inner_cx = Context::from_waker(&this.waker);
        for polls in 1.. {
            this.shared.state.store(POLLING, Ordering::Release);
            let polled = Pin::new(&mut this.inner).poll(&mut inner_cx);
            let woken = this.shared.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
            if polls > AGAIN || !tokio::task::coop::has_budget_remaining() {
                break;
            }
        }
        // Woken during the poll, and polled in place enough: the task
        // yields, as it would have without this.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself `times` times during its polls, then is ready; counts
    /// its polls.
    struct SelfWaking {
        times: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.times == 0 {
                return Poll::Ready(());
            }
            self.times -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts the wakes of the task's own waker.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut Rewake<F>, task: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(task))
    }

    #[test]
    fn a_wake_during_the_poll_is_a_poll_in_place_not_a_wake_of_the_task() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let task = Waker::from(Arc::clone(&counter));
        let polls = Arc::new(AtomicUsize::new(0));
        let mut f = Rewake::new(SelfWaking {
            times: 2,
            polls: Arc::clone(&polls),
        });
        assert!(poll_once(&mut f, &task).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), 3);
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn past_the_polls_in_place_the_task_is_woken_to_yield() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let task = Waker::from(Arc::clone(&counter));
        let polls = Arc::new(AtomicUsize::new(0));
        let mut f = Rewake::new(SelfWaking {
            times: 100,
            polls: Arc::clone(&polls),
        });
        assert!(poll_once(&mut f, &task).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), AGAIN + 1);
        // Not lost: the task is woken, and goes on when polled.
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert!(poll_once(&mut f, &task).is_pending());
        assert_eq!(counter.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let task = Waker::from(Arc::clone(&counter));
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        // Pending until woken from outside: it hands its waker out.
        let mut f = Rewake::new(std::future::poll_fn(move |cx| {
            tx.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        }));
        assert!(poll_once(&mut f, &task).is_pending());
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);
        let handed = rx.recv().unwrap();
        std::thread::spawn(move || handed.wake()).join().unwrap();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
    }
}
