//! Reads a whole request body, feeding every chunk to an observer (the
//! credential's hash), keeping it in memory up to `memory` bytes (while the
//! process-wide budget, `memory_total`, has room) and in an anonymous temp
//! file beyond that, and refusing it past `max_body`. Once the body goes to
//! disk, an observer that asks for it sees the rest on a blocking thread
//! (`offload`), batch by batch, while the body is still being received.
//! The temp file has no name on disk (or loses it at once), so it is gone on
//! every path: success, error, client disconnect, even a crash.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;

use super::budget::{Budget, SpoolHold, SpoolUsage};
use super::buffer::Buffer;
use super::deadline::BodyTimeout;
use super::file::FileBody;
pub use super::offload::Observer;
use super::offload::Offload;
use super::writer::SpoolWriter;
use super::{BoxError, ProxyBody};

/// The smallest in-memory buffer a body gets when its length is unknown.
const FIRST_CAPACITY: usize = 16 << 10;

#[derive(Debug, Clone)]
pub struct SpoolLimits {
    pub max_body: u64,
    /// Per request: a body larger than this goes to disk.
    pub memory: usize,
    /// Across all requests: a body that would take the total past this goes
    /// to disk.
    pub memory_total: u64,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("request body is larger than max_body ({limit} bytes)")]
    TooLarge { limit: u64 },
    /// Larger than a credential that signs the body whole may hold in
    /// memory (its own `max_body`, below the global one).
    #[error("request body is larger than {limit} bytes, the most credential `{credential}` holds in memory to sign (its max_body)")]
    TooLargeToSign { limit: u64, credential: String },
    #[error("reading the request body from the client failed")]
    Client(#[source] BoxError),
    #[error(transparent)]
    Timeout(BodyTimeout),
    #[error("spooling the request body to {dir} failed")]
    Disk {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A body read to its end, ready to be sent with a known length, as many
/// times as needed. It holds its share of the spool (memory or disk) until
/// it and every body made from it are dropped.
pub struct Spooled {
    kept: Kept,
    len: u64,
    hold: Arc<SpoolHold>,
}

enum Kept {
    Memory(Bytes),
    /// Read with positioned reads: bodies made from it share no offset;
    /// their buffers take from the budget.
    File(Arc<std::fs::File>, Budget),
}

impl Spooled {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_on_disk(&self) -> bool {
        matches!(self.kept, Kept::File(..))
    }

    /// The body, when it is kept in memory: shared, not copied.
    pub fn in_memory(&self) -> Option<Bytes> {
        match &self.kept {
            Kept::Memory(bytes) => Some(bytes.clone()),
            Kept::File(..) => None,
        }
    }

    pub fn into_body(self) -> ProxyBody {
        let body = match self.kept {
            Kept::Memory(bytes) if bytes.is_empty() => super::empty(),
            Kept::Memory(bytes) => super::full(bytes),
            Kept::File(file, budget) => super::boxed(FileBody::new(file, self.len, budget)),
        };
        super::with_guard(body, self.hold)
    }

    /// The body once more, from its start: the same bytes in memory, or the
    /// spool file read afresh.
    pub async fn body(&self) -> std::io::Result<ProxyBody> {
        let body = match &self.kept {
            Kept::Memory(bytes) if bytes.is_empty() => super::empty(),
            Kept::Memory(bytes) => super::full(bytes.clone()),
            Kept::File(file, budget) => {
                super::boxed(FileBody::new(Arc::clone(file), self.len, budget.clone()))
            }
        };
        Ok(super::with_guard(body, Arc::clone(&self.hold)))
    }
}

/// Reads `body` to its end, feeding every chunk to `observer` (taken from
/// there while it runs on a thread of its own, put back before `Ok`; left
/// in place, not moved, so a small body's future stays small). Trailers
/// are dropped. Memory is taken from
/// `usage` as the body grows, so the bytes a request holds are counted
/// while it is being read, not only once it is complete; the buffers of a
/// body on disk take from it too.
pub async fn spool<B, O: Observer>(
    body: B,
    limits: &SpoolLimits,
    usage: &Arc<SpoolUsage>,
    observer: &mut Option<O>,
) -> Result<Spooled, SpoolError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    let hint = body
        .size_hint()
        .upper()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= limits.memory);
    // Copied, not kept as received: a received chunk pins the whole read
    // buffer it was cut from, so a body of 1-byte chunks would hold far
    // more memory than `limits.memory` counts.
    let mut memory: Vec<u8> = Vec::new();
    let mut hold = usage.hold();
    let budget = Budget::new(Arc::clone(usage), limits.memory_total);
    let mut len: u64 = 0;
    let mut file: Option<SpoolWriter<O>> = None;
    // An observer that stays on this thread sees each chunk first, as it
    // arrives (so the copy a credential keeps takes its memory before the
    // spool does, and fails the body at once); one that asks to be
    // offloaded sees the head here and the rest on a thread of its own.
    let inline = observer.as_ref().is_some_and(|o| !o.offload());
    let disk = |source| SpoolError::Disk {
        dir: limits.dir.clone(),
        source,
    };

    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(client_error)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > limits.max_body {
            return Err(SpoolError::TooLarge {
                limit: limits.max_body,
            });
        }
        if inline {
            if let Some(o) = observer.as_mut() {
                o.observe(&data).map_err(client_error)?;
            }
        }
        let f = match file.as_mut() {
            Some(f) => f,
            None => {
                let for_budget = match room(&mut memory, &mut hold, data.len(), hint, limits) {
                    Room::Enough => {
                        if let Some(o) = observer.as_mut().filter(|_| !inline) {
                            o.observe(&data).map_err(client_error)?;
                        }
                        memory.extend_from_slice(&data);
                        continue;
                    }
                    Room::TooBig => false,
                    Room::OverBudget => true,
                };
                // The head's memory stays counted until it is written.
                let share = hold.memory_to_share();
                hold.to_disk(for_budget);
                hold.grow_disk(memory.len() as u64);
                let head = Buffer::new(std::mem::take(&mut memory), Some(share));
                // From this chunk on, an offloaded observer sees the body
                // on a thread of its own.
                let offload = match inline {
                    true => None,
                    false => observer.take().map(Offload::new),
                };
                let created = SpoolWriter::create(&limits.dir, head, budget.clone(), offload);
                file.insert(created.await.map_err(disk)?)
            }
        };
        hold.grow_disk(data.len() as u64);
        f.push(data).await.map_err(disk)?;
    }

    let kept = match file {
        None => Kept::Memory(Bytes::from(memory)),
        Some(f) => {
            let (written, offloaded) = f.finish().await.map_err(disk)?;
            if offloaded.is_some() {
                *observer = offloaded;
            }
            Kept::File(written, budget)
        }
    };
    Ok(Spooled {
        kept,
        len,
        hold: Arc::new(hold),
    })
}

fn client_error(e: impl Into<BoxError>) -> SpoolError {
    let e = e.into();
    match BodyTimeout::find(&*e) {
        Some(t) => SpoolError::Timeout(t),
        None => SpoolError::Client(e),
    }
}

/// Whether `more` bytes fit in memory.
enum Room {
    Enough,
    /// The body is larger than the per-request `spool_memory`.
    TooBig,
    /// The total memory budget is spent.
    OverBudget,
}

/// Makes room for `more` bytes in `memory`, taking what it grows by from
/// the budget: `hint` (the declared length) at once if it fits, else twice
/// the capacity up to `limits.memory`, else just enough.
fn room(
    memory: &mut Vec<u8>,
    hold: &mut SpoolHold,
    more: usize,
    hint: Option<usize>,
    limits: &SpoolLimits,
) -> Room {
    let need = memory.len() + more;
    if need > limits.memory {
        return Room::TooBig;
    }
    let capacity = memory.capacity();
    if need <= capacity {
        return Room::Enough;
    }
    let generous = hint
        .filter(|h| *h >= need)
        .unwrap_or_else(|| (capacity * 2).max(FIRST_CAPACITY).min(limits.memory))
        .max(need);
    for target in [generous, need] {
        if hold.grow_memory((target - capacity) as u64, limits.memory_total) {
            memory.reserve_exact(target - memory.len());
            return Room::Enough;
        }
    }
    Room::OverBudget
}

#[cfg(test)]
mod tests;
