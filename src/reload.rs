//! Reload: a change to a watched file, SIGHUP, or an explicit call ->
//! load -> validate -> build the whole snapshot -> bind any new listener ->
//! ONE store. Any failure leaves the serving snapshot untouched.
//!
//! Only changes start a reload: a file that is opened or read (by `cat`, a
//! backup, or the reload itself) is not a change, or every reload would
//! start the next one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::app::{self, App, AppInner};
use crate::config::{ConfigError, Problem};
use crate::listener::Listener;
use crate::snapshot::Snapshot;

/// Changes arriving within this window are taken as one (editors and
/// Kubernetes write several files in a burst).
const SETTLE: Duration = Duration::from_millis(150);

pub(crate) async fn reload(inner: &AppInner) -> Result<u64, ConfigError> {
    let _one_at_a_time = inner.reloading.lock().await;
    let result = build_and_swap(inner).await;
    inner.metrics.reload(result.is_ok());
    let mut last = inner.last_error.lock().unwrap_or_else(|p| p.into_inner());
    match &result {
        Ok(generation) => {
            *last = None;
            tracing::info!(generation, "config reloaded");
        }
        Err(e) => {
            *last = Some(e.clone());
            for p in &e.problems {
                tracing::error!(problem = %p, "config reload refused; the previous config keeps serving");
            }
        }
    }
    result
}

/// Files are read and the snapshot built before the listeners are locked:
/// shutdown takes that lock, and must never wait for a slow file.
async fn build_and_swap(inner: &AppInner) -> Result<u64, ConfigError> {
    let config = app::load(&inner.config_path).await?;
    let watched_files = config.watched_files.clone();
    let generation = inner.cell.load().generation + 1;
    let snapshot = Snapshot::build(config, generation, &inner.own, &inner.tokens, &inner.kept)
        .map_err(|problems| ConfigError {
            problems,
            watched_files: watched_files.clone(),
        })?;
    let mut listeners = inner.listeners.lock().await;

    // Bind new listeners before the swap: a busy port refuses the reload
    // instead of leaving it half-applied.
    let mut fresh = Vec::new();
    for (role, addr) in snapshot.listeners() {
        if listeners.get(&role).is_some_and(|l| l.configured == addr) {
            continue;
        }
        match Listener::bind(role.clone(), addr).await {
            Ok((tcp, _)) => fresh.push((role, addr, tcp)),
            Err(e) => {
                return Err(ConfigError {
                    problems: vec![Problem {
                        path: format!("listen ({role})"),
                        message: format!("cannot listen on {addr}: {e}"),
                    }],
                    watched_files,
                })
            }
        }
    }
    let wanted: BTreeSet<_> = snapshot.listeners().into_iter().map(|(r, _)| r).collect();
    inner.cell.store(Arc::new(snapshot));

    let mut addrs = inner.addrs.lock().unwrap_or_else(|p| p.into_inner());
    for (role, addr, tcp) in fresh {
        // Once shutdown has begun no new listener starts.
        let Some(ctx) = inner.context() else { break };
        let l = Listener::spawn(role.clone(), addr, tcp, ctx);
        addrs.insert(role.clone(), l.local);
        listeners.insert(role, l);
    }
    listeners.retain(|role, _| wanted.contains(role));
    addrs.retain(|role, _| wanted.contains(role));
    inner.own.set(addrs.values().copied().collect());
    drop(addrs);
    inner.generation.send_replace(generation);
    Ok(generation)
}

pub(crate) fn on_sighup(app: App) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading config");
            let _ = app.reload().await;
        }
    });
    Ok(())
}

/// Watches the folders of the config file and of every file it references
/// (folders, not files: Kubernetes swaps Secret and ConfigMap volumes by
/// renaming a `..data` symlink, which a watch on the file would miss).
pub(crate) fn watch_files(app: App) -> Result<(), String> {
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
    let files = app.snapshot().watched_files.clone();
    watched.update(&mut watcher, &files);

    tokio::spawn(async move {
        while let Some((paths, rescan)) = rx.recv().await {
            // A rescan: the kernel dropped events, one may have been ours.
            if !rescan && !paths.iter().any(|p| watched.is_relevant(p)) {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let files = match app.reload().await {
                Ok(_) => app.snapshot().watched_files.clone(),
                Err(e) => {
                    let mut files = app.snapshot().watched_files.clone();
                    files.extend(e.watched_files);
                    files
                }
            };
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
