//! Every log line, at trace level, of the test that holds the capture: for
//! the tests that prove no secret reaches a log. Use a current-thread
//! runtime (`#[tokio::test]`) so every task of the test logs here.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

pub struct TraceCapture {
    buffer: Buffer,
    _guard: DefaultGuard,
}

impl TraceCapture {
    /// Captures this thread's logs until dropped.
    pub fn install() -> TraceCapture {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(buffer.clone())
            .with_ansi(false)
            .finish();
        TraceCapture {
            _guard: tracing::subscriber::set_default(subscriber),
            buffer,
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.buffer.0.lock().unwrap().clone()).unwrap()
    }
}
