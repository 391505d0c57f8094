//! Reading the files a config points at (the config itself, `${file:}`
//! secrets, CA, certificate and key files, token stores): regular files only
//! (a symlink to one is fine: Kubernetes secret volumes are symlinks), at
//! most `MAX_BYTES`, and within `TIMEOUT`. A FIFO, a device such as
//! `/dev/zero`, a socket or a folder is refused before it is opened, so no
//! read can block a reload or fill memory; a read stuck on a stalled network
//! volume is abandoned after `TIMEOUT` (its thread is left to the kernel).
//! At most `MAX_STALLED` abandoned reads are left at once, process-wide:
//! past that every new read fails at once, so a volume that stalls every
//! read costs at most `MAX_STALLED` threads (and their 2 MiB stacks,
//! reserved, not resident), plus one thread per caller still waiting.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The largest file countersign reads for its config: 1 MiB.
pub const MAX_BYTES: u64 = 1 << 20;

/// How long one file read may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Reads abandoned at their timeout and not yet returned, process-wide,
/// past which a new read is refused at once.
pub const MAX_STALLED: usize = 8;

/// The process's count of abandoned reads.
static STALLED: Stalled = Stalled::new(MAX_STALLED);

/// Why a file was not read. `Display` never shows the file's content.
#[derive(Debug)]
pub enum FileError {
    Io(std::io::Error),
    /// A FIFO, device, socket or folder: named by what it is.
    NotRegular(&'static str),
    TooLarge,
    TimedOut(Duration),
    /// Not tried: this many earlier reads are still stalled.
    TooManyStalled(usize),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "{e}"),
            FileError::NotRegular(kind) => write!(
                f,
                "it is {kind}, not a regular file; countersign reads only regular files (a symlink to one is fine)"
            ),
            FileError::TooLarge => write!(f, "it is larger than {} KiB", MAX_BYTES >> 10),
            FileError::TimedOut(t) => write!(
                f,
                "reading it did not finish within {}s (a stalled network volume?)",
                t.as_secs_f32()
            ),
            FileError::TooManyStalled(n) => write!(
                f,
                "not read: too many stalled reads ({n} earlier file reads never finished; a stalled network volume?)"
            ),
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    /// Nothing readable is at the path: missing, or not a usable name.
    fn nothing_there(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            FileError::Io(e) => {
                matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::InvalidInput
                ) || e.raw_os_error() == Some(36) // ENAMETOOLONG
            }
            _ => false,
        }
    }
}

/// `cannot read WHAT `PATH`: REASON` for a config key that names a file
/// (`what`: "the key file", say). When nothing is at that path, the path is
/// left out: the value may be a key or certificate pasted where its file
/// name belongs, and an error never echoes a value (the key path says
/// where to look).
pub fn cannot_read(what: &str, path: &Path, e: &FileError) -> String {
    if e.nothing_there() {
        format!("cannot read {what}: {e} (a relative path is taken from the config file's folder)")
    } else {
        format!("cannot read {what} `{}`: {e}", path.display())
    }
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        FileError::Io(e)
    }
}

impl From<FileError> for std::io::Error {
    /// Keeps the kind of an I/O error (a missing file stays `NotFound`).
    fn from(e: FileError) -> Self {
        match e {
            FileError::Io(e) => e,
            FileError::TimedOut(_) | FileError::TooManyStalled(_) => {
                std::io::Error::new(std::io::ErrorKind::TimedOut, e)
            }
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other),
        }
    }
}

/// Reads `path` whole, under the rules above.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    let path = path.to_path_buf();
    within(&STALLED, TIMEOUT, move || read_now(&path, MAX_BYTES))
}

/// Reads `path` as UTF-8 text, under the same rules.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    String::from_utf8(read(path)?).map_err(|_| {
        FileError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not UTF-8 text",
        ))
    })
}

/// A count of reads abandoned at their timeout whose threads have not
/// returned yet, and the most there may be.
struct Stalled {
    now: AtomicUsize,
    max: usize,
}

impl Stalled {
    const fn new(max: usize) -> Stalled {
        Stalled {
            now: AtomicUsize::new(0),
            max,
        }
    }
}

/// Where one read's thread is: the caller and the thread each mark it, and
/// whichever comes second knows whether the read was abandoned.
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const ABANDONED: u8 = 2;

/// Held by a read's thread: when it ends, marks the read returned, and
/// gives back its place among the stalled if it had been abandoned.
struct Returned {
    state: Arc<AtomicU8>,
    stalled: &'static Stalled,
}

impl Drop for Returned {
    fn drop(&mut self) {
        if self.state.swap(RETURNED, Ordering::SeqCst) == ABANDONED {
            self.stalled.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Runs `read` on its own thread and waits at most `timeout` for it. A read
/// that never returns keeps only its own thread, never the caller; while
/// `stalled.max` such threads are left, a new read is refused at once.
fn within(
    stalled: &'static Stalled,
    timeout: Duration,
    read: impl FnOnce() -> Result<Vec<u8>, FileError> + Send + 'static,
) -> Result<Vec<u8>, FileError> {
    let left = stalled.now.load(Ordering::SeqCst);
    if left >= stalled.max {
        return Err(FileError::TooManyStalled(left));
    }
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = mpsc::sync_channel(1);
    let returned = Returned {
        state: Arc::clone(&state),
        stalled,
    };
    std::thread::Builder::new()
        .name("countersign-read".into())
        .spawn(move || {
            // Marked as the thread ends, even by a panic.
            let _returned = returned;
            let _ = tx.send(read());
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before it is marked, so the thread never takes away
            // what was not added yet.
            stalled.now.fetch_add(1, Ordering::SeqCst);
            if state.swap(ABANDONED, Ordering::SeqCst) == RETURNED {
                stalled.now.fetch_sub(1, Ordering::SeqCst);
                if let Ok(result) = rx.try_recv() {
                    return result;
                }
            }
            Err(FileError::TimedOut(timeout))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(FileError::Io(std::io::Error::other(
            "the reading thread ended without an answer",
        ))),
    }
}

fn read_now(path: &PathBuf, cap: u64) -> Result<Vec<u8>, FileError> {
    // `metadata` follows symlinks: the target's type is what counts. The
    // check runs again on the opened file, in case it was swapped between.
    let meta = std::fs::metadata(path)?;
    regular(&meta)?;
    if meta.len() > cap {
        return Err(FileError::TooLarge);
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    regular(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(cap)).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge);
    }
    Ok(bytes)
}

fn regular(meta: &std::fs::Metadata) -> Result<(), FileError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(FileError::NotRegular(kind))
}

#[cfg(test)]
mod tests;
