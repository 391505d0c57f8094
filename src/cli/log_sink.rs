//! Where `run`'s log lines go: stderr, written by a thread of its own in
//! batches. A request appends its line to a shared buffer (a lock, no
//! system call) and goes on; the writer thread, woken when the buffer stops
//! being empty, waits `BATCH_WINDOW` for more lines and writes them all at
//! once. Under load that is one write for many requests instead of one
//! each, and a request never waits on a log reader that is slow, as long
//! as the buffer has room.
//!
//! The buffer is bounded (`BUFFER_CAP`): a line that finds it full writes
//! the buffer itself before going on, so no line is dropped, memory stays
//! bounded, and lines keep their order. Dropping the `Flush` guard writes
//! what is left.
//!
//! Per line this is one lock and one copy into the shared buffer: the
//! formatter hands over a whole line, so the line's writer holds the lock
//! from its first byte to its drop instead of gathering the line in a
//! buffer of its own (an allocation and a copy per request). The batch
//! written last is kept, emptied, as the next buffer (up to `KEEP_CAP`), so
//! the buffer does not grow again from nothing after every batch.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer gathers lines after the first one: the most a line
/// waits before it is written.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// The most bytes the buffer holds before a line writes it itself.
const BUFFER_CAP: usize = 1 << 20;
/// The largest emptied batch kept as the next buffer; a larger one (a
/// burst) is freed.
const KEEP_CAP: usize = 64 << 10;

struct Shared<W> {
    /// Lines not yet written. Locked after `out` when both are needed.
    lines: Mutex<Vec<u8>>,
    /// Signalled when `lines` stops being empty.
    filled: Condvar,
    /// The output, and the batch last written (empty, kept for reuse).
    out: Mutex<(W, Vec<u8>)>,
    /// No writer thread: each line writes the buffer itself.
    direct: AtomicBool,
}

impl<W: Write> Shared<W> {
    /// Writes what is buffered now. `out` is held while the buffer is taken,
    /// so two writers cannot reorder their batches.
    fn write_out(&self) {
        let mut guard = lock(&self.out);
        let (out, batch) = &mut *guard;
        std::mem::swap(batch, &mut *lock(&self.lines));
        if !batch.is_empty() {
            // A failed write (stderr closed) is not retried: nowhere else
            // to say so.
            let _ = out.write_all(batch);
            let _ = out.flush();
        }
        batch.clear();
        if batch.capacity() > KEEP_CAP {
            *batch = Vec::new();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands each event's bytes to the buffer.
pub struct LogSink<W> {
    shared: Arc<Shared<W>>,
}

impl<W> Clone for LogSink<W> {
    fn clone(&self) -> Self {
        LogSink {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Writes what is buffered when dropped.
pub struct Flush<W: Write> {
    shared: Arc<Shared<W>>,
}

impl<W: Write> Drop for Flush<W> {
    fn drop(&mut self) {
        self.shared.write_out();
    }
}

/// A sink writing to `out`, and the guard that flushes it. Without a
/// writer thread (it could not start) every line is written at once.
pub fn start<W: Write + Send + 'static>(out: W) -> (LogSink<W>, Flush<W>) {
    let shared = Arc::new(Shared {
        lines: Mutex::new(Vec::new()),
        filled: Condvar::new(),
        out: Mutex::new((out, Vec::new())),
        direct: AtomicBool::new(false),
    });
    let writer = Arc::clone(&shared);
    let started = std::thread::Builder::new()
        .name("countersign-log".into())
        .spawn(move || loop {
            {
                let lines = lock(&writer.lines);
                let _unused = writer
                    .filled
                    .wait_while(lines, |l| l.is_empty())
                    .unwrap_or_else(|p| p.into_inner());
            }
            std::thread::sleep(BATCH_WINDOW);
            writer.write_out();
        })
        .is_ok();
    shared.direct.store(!started, Ordering::Relaxed);
    let sink = LogSink {
        shared: Arc::clone(&shared),
    };
    (sink, Flush { shared })
}

/// One event's bytes, appended to the buffer as they come: the buffer is
/// locked from the first byte to the drop, so a line's parts stay together.
/// (The formatter has the whole line before it asks for a writer.)
pub struct LineWriter<'a, W: Write> {
    shared: &'a Shared<W>,
    /// The buffer, once something was written, and whether it was empty.
    lines: Option<(MutexGuard<'a, Vec<u8>>, bool)>,
}

impl<W: Write> Write for LineWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (lines, _) = self.lines.get_or_insert_with(|| {
            let lines = lock(&self.shared.lines);
            let was_empty = lines.is_empty();
            (lines, was_empty)
        });
        lines.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for LineWriter<'_, W> {
    fn drop(&mut self) {
        let Some((lines, was_empty)) = self.lines.take() else {
            return;
        };
        if was_empty {
            self.shared.filled.notify_one();
        }
        let full = lines.len() >= BUFFER_CAP || self.shared.direct.load(Ordering::Relaxed);
        drop(lines);
        if full {
            self.shared.write_out();
        }
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for LogSink<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> LineWriter<'a, W> {
        LineWriter {
            shared: &self.shared,
            lines: None,
        }
    }
}

#[cfg(test)]
mod tests;
