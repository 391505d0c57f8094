//! What starts a reload besides an explicit call: a change to a watched
//! file, or SIGHUP. The reload itself (load -> validate -> build -> bind ->
//! swap) belongs to the app; the triggers are given a `Target` to start it.
//!
//! Only changes start a reload: a file that is opened or read (by `cat`, a
//! backup, or the reload itself) is not a change, or every reload would
//! start the next one.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Changes arriving within this window are taken as one (editors and
/// Kubernetes write several files in a burst).
const SETTLE: Duration = Duration::from_millis(150);

/// What a trigger reloads.
pub(crate) trait Target: Send + 'static {
    /// Reloads now (the reload logs its own outcome) and answers the files
    /// to watch from then on: the serving config's, and after a refused
    /// reload also those the refused config named, so that fixing one of
    /// them starts the next reload.
    fn reload_watched(&self) -> impl Future<Output = Vec<PathBuf>> + Send;
}

pub(crate) fn on_sighup(target: impl Target) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading config");
            target.reload_watched().await;
        }
    });
    Ok(())
}

/// Watches the folders of the config file and of every file it references
/// (folders, not files: Kubernetes swaps Secret and ConfigMap volumes by
/// renaming a `..data` symlink, which a watch on the file would miss).
pub(crate) fn watch_files(target: impl Target, files: &[PathBuf]) -> Result<(), String> {
    let (tx, mut rx) = mpsc::channel::<(Vec<PathBuf>, bool)>(256);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let rescan = event.need_rescan();
            if rescan || is_change(&event.kind) {
                let _ = tx.try_send((event.paths, rescan));
            }
        }
    })
    .map_err(|e| e.to_string())?;
    let mut watched = WatchSet::default();
    watched.update(&mut watcher, files);

    tokio::spawn(async move {
        while let Some((paths, rescan)) = rx.recv().await {
            // A rescan: the kernel dropped events, one may have been ours.
            if !rescan && !paths.iter().any(|p| watched.is_relevant(p)) {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let files = target.reload_watched().await;
            watched.update(&mut watcher, &files);
        }
    });
    Ok(())
}

/// Whether an event is a change to what is in a folder: created, written,
/// removed, renamed (the Kubernetes `..data` swap is a rename), or its
/// metadata changed (`touch`). Opening, reading and closing a file without
/// writing it change nothing.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    }
}

/// The folders being watched and the file names in them that matter.
#[derive(Default)]
struct WatchSet {
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
}

impl WatchSet {
    fn update(&mut self, watcher: &mut notify::RecommendedWatcher, files: &[PathBuf]) {
        let files: BTreeSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = watcher.unwatch(gone);
        }
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch folder; changes there need SIGHUP");
            }
        }
        self.dirs = dirs;
        self.files = files;
    }

    /// A watched file itself, or a Kubernetes `..data`-style entry beside one.
    fn is_relevant(&self, path: &Path) -> bool {
        let path = absolute(path);
        if self.files.contains(&path) {
            return true;
        }
        let hidden_k8s = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".."));
        hidden_k8s && path.parent().is_some_and(|d| self.dirs.contains(d))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn opening_and_reading_a_file_is_not_a_change() {
        for access in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Close(AccessMode::Execute),
            AccessKind::Any,
        ] {
            assert!(!is_change(&EventKind::Access(access)), "{access:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(is_change(&change), "{change:?}");
        }
    }
}
