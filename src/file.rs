//! Reading the files a config points at (the config itself, `${file:}`
//! secrets, CA, certificate and key files, token stores): regular files only
//! (a symlink to one is fine: Kubernetes secret volumes are symlinks), at
//! most `MAX_BYTES`, and within `TIMEOUT`. A FIFO, a device such as
//! `/dev/zero`, a socket or a folder is refused before it is opened, so no
//! read can block a reload or fill memory; a read stuck on a stalled network
//! volume is abandoned after `TIMEOUT` (its thread is left to the kernel).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The largest file countersign reads for its config: 1 MiB.
pub const MAX_BYTES: u64 = 1 << 20;

/// How long one file read may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a file was not read. `Display` never shows the file's content.
#[derive(Debug)]
pub enum FileError {
    Io(std::io::Error),
    /// A FIFO, device, socket or folder: named by what it is.
    NotRegular(&'static str),
    TooLarge,
    TimedOut(Duration),
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
            FileError::TimedOut(_) => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other),
        }
    }
}

/// Reads `path` whole, under the rules above.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    let path = path.to_path_buf();
    within(TIMEOUT, move || read_now(&path, MAX_BYTES))
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

/// Runs `read` on its own thread and waits at most `timeout` for it. A read
/// that never returns keeps only its own thread, never the caller.
fn within(
    timeout: Duration,
    read: impl FnOnce() -> Result<Vec<u8>, FileError> + Send + 'static,
) -> Result<Vec<u8>, FileError> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("countersign-read".into())
        .spawn(move || {
            let _ = tx.send(read());
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(FileError::TimedOut(timeout)),
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
mod tests {
    use super::*;

    fn message(path: &Path) -> String {
        read(path).unwrap_err().to_string()
    }

    #[test]
    fn a_regular_file_and_a_symlink_to_one_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "value").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("link")).unwrap();
        assert_eq!(read(&dir.path().join("f")).unwrap(), b"value");
        assert_eq!(read_text(&dir.path().join("link")).unwrap(), "value");
    }

    #[test]
    fn devices_fifos_and_folders_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::os::unix::fs::symlink(&fifo, dir.path().join("to-fifo")).unwrap();
        assert!(message(&fifo).contains("a FIFO"), "{}", message(&fifo));
        assert!(message(&dir.path().join("to-fifo")).contains("a FIFO"));
        assert!(message(Path::new("/dev/zero")).contains("a device"));
        assert!(message(dir.path()).contains("a folder"));
        let missing = read(&dir.path().join("missing")).unwrap_err();
        assert_eq!(
            std::io::Error::from(missing).kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; MAX_BYTES as usize]).unwrap();
        assert_eq!(read(&path).unwrap().len() as u64, MAX_BYTES);
        std::fs::write(&path, vec![b'x'; MAX_BYTES as usize + 1]).unwrap();
        assert!(message(&path).contains("larger than 1024 KiB"));
        // A file that claims no size (as in /proc) is still cut at the cap.
        let e = read_now(&PathBuf::from("/proc/self/status"), 10).unwrap_err();
        assert!(matches!(e, FileError::TooLarge), "{e}");
    }

    #[test]
    fn a_read_that_never_returns_is_abandoned_at_the_timeout() {
        let (unblock, blocked) = mpsc::channel::<()>();
        let e = within(Duration::from_millis(50), move || {
            let _ = blocked.recv();
            Ok(Vec::new())
        })
        .unwrap_err();
        assert!(matches!(e, FileError::TimedOut(_)), "{e}");
        assert!(e.to_string().contains("did not finish within"), "{e}");
        drop(unblock);
    }

    #[test]
    fn invalid_utf8_is_named_without_quoting_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, [b's', b'3', 0xff, b'c']).unwrap();
        let e = read_text(&path).unwrap_err().to_string();
        assert_eq!(e, "it is not UTF-8 text");
    }
}
