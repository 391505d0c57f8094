//! Every line arrives, in order, batched, and none waits for a slow reader
//! while the buffer has room.

use super::*;

use std::sync::mpsc;

/// Records each write call (to count them) and what was written.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<(usize, Vec<u8>)>>);

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut r = self.0.lock().unwrap();
        r.0 += 1;
        r.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Recorder {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().1.clone()).unwrap()
    }
}

fn line(sink: &LogSink<impl Write + Send + 'static>, text: &str) {
    let mut w = sink.make_writer();
    writeln!(w, "{text}").unwrap();
}

/// Each of `threads` threads' lines, in the order they arrived.
fn per_thread(text: &str, threads: usize) -> Vec<Vec<usize>> {
    (0..threads)
        .map(|t| {
            text.lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn every_line_arrives_in_order_and_the_guard_writes_the_rest() {
    let out = Recorder::default();
    let (sink, flush) = start(out.clone());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..5000 {
                    line(&sink, &format!("thread {t} line {i}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(flush);
    for (t, lines) in per_thread(&out.text(), 4).iter().enumerate() {
        assert_eq!(*lines, (0..5000).collect::<Vec<_>>(), "thread {t}");
    }
}

#[test]
fn past_the_cap_a_line_writes_the_buffer_itself_and_nothing_is_lost() {
    let out = Recorder::default();
    let (sink, flush) = start(out.clone());
    // About 3 MiB, far past BUFFER_CAP, faster than one batch window.
    let long = "x".repeat(1000);
    for i in 0..3000 {
        line(&sink, &format!("thread 0 line {i} {long}"));
    }
    drop(flush);
    let text = out.text();
    let numbers: Vec<usize> = text
        .lines()
        .filter_map(|l| l.strip_prefix("thread 0 line "))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..3000).collect::<Vec<_>>());
}

#[test]
fn a_quiet_log_is_written_without_the_guard() {
    let out = Recorder::default();
    let (told, written) = mpsc::channel();
    let (sink, _flush) = start(Told {
        out: out.clone(),
        told,
    });
    line(&sink, "one line");
    // No polling: the writer says when the sink's thread wrote.
    written
        .recv_timeout(Duration::from_secs(10))
        .expect("the line is written within 10 s, the guard still held");
    assert_eq!(out.text(), "one line\n");
}

/// A `Recorder` that tells the test each time it is written to.
struct Told {
    out: Recorder,
    told: mpsc::Sender<()>,
}

impl Write for Told {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        let _ = self.told.send(());
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer whose first write waits until the test lets it go.
struct Stalled {
    out: Recorder,
    entered: Option<mpsc::Sender<()>>,
    release: mpsc::Receiver<()>,
}

impl Write for Stalled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.release.recv().unwrap();
        }
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_logged_while_the_reader_stalls_go_out_in_one_write() {
    let out = Recorder::default();
    let (entered_tx, entered) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    let stalled = Stalled {
        out: out.clone(),
        entered: Some(entered_tx),
        release,
    };
    let (sink, flush) = start(stalled);
    line(&sink, "first");
    // The reader stalls; the logging threads go on.
    entered.recv().unwrap();
    for i in 0..100 {
        line(&sink, &format!("queued {i}"));
    }
    release_tx.send(()).unwrap();
    drop(flush);
    let (writes, _) = out.0.lock().unwrap().clone();
    assert_eq!(out.text().lines().count(), 101);
    assert_eq!(writes, 2, "the first line, then the hundred queued at once");
}
