//! The file rules: types refused, the size cap, the timeout and the cap on
//! stalled reads.

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
    static STALLED: Stalled = Stalled::new(8);
    let (unblock, blocked) = mpsc::channel::<()>();
    let e = within(&STALLED, Duration::from_millis(50), move || {
        let _ = blocked.recv();
        Ok(Vec::new())
    })
    .unwrap_err();
    assert!(matches!(e, FileError::TimedOut(_)), "{e}");
    assert!(e.to_string().contains("did not finish within"), "{e}");
    drop(unblock);
}

#[test]
fn past_the_stalled_reads_allowed_a_read_is_refused_at_once_until_one_returns() {
    static STALLED: Stalled = Stalled::new(2);
    let stall = |blocked: mpsc::Receiver<()>| {
        within(&STALLED, Duration::from_millis(20), move || {
            let _ = blocked.recv();
            Ok(Vec::new())
        })
    };
    let (first, blocked) = mpsc::channel::<()>();
    assert!(matches!(stall(blocked), Err(FileError::TimedOut(_))));
    let (second, blocked) = mpsc::channel::<()>();
    assert!(matches!(stall(blocked), Err(FileError::TimedOut(_))));
    assert_eq!(STALLED.now.load(Ordering::SeqCst), 2);

    // The third is not started: its closure would panic if it ran.
    let e = within(&STALLED, Duration::from_secs(60), || panic!("started")).unwrap_err();
    assert!(matches!(e, FileError::TooManyStalled(2)), "{e}");
    let message = cannot_read("the key file", Path::new("/mnt/slow/key.pem"), &e);
    assert_eq!(
        message,
        "cannot read the key file `/mnt/slow/key.pem`: not read: too many stalled reads (2 earlier file reads never finished; a stalled network volume?)"
    );
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::TimedOut);

    // A stalled read that returns gives its place back.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while STALLED.now.load(Ordering::SeqCst) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the place was not given back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let read = within(&STALLED, Duration::from_secs(60), || Ok(b"ok".to_vec()));
    assert_eq!(read.unwrap(), b"ok");
    drop(second);
}

#[test]
fn invalid_utf8_is_named_without_quoting_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin");
    std::fs::write(&path, [b's', b'3', 0xff, b'c']).unwrap();
    let e = read_text(&path).unwrap_err().to_string();
    assert_eq!(e, "it is not UTF-8 text");
}

#[test]
fn a_stalled_read_that_panics_still_gives_its_place_back() {
    static STALLED: Stalled = Stalled::new(1);
    let (release, blocked) = mpsc::channel::<()>();
    let e = within(&STALLED, Duration::from_millis(20), move || {
        let _ = blocked.recv();
        panic!("the read failed badly");
    })
    .unwrap_err();
    assert!(matches!(e, FileError::TimedOut(_)), "{e}");
    assert!(matches!(
        within(&STALLED, Duration::from_secs(60), || Ok(Vec::new())),
        Err(FileError::TooManyStalled(1))
    ));
    drop(release);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while STALLED.now.load(Ordering::SeqCst) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the place was not given back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        within(&STALLED, Duration::from_secs(60), || Ok(b"ok".to_vec())).unwrap(),
        b"ok"
    );
}
