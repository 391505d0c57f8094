//! Reads a whole request body, feeding every chunk to an observer (the
//! credential's hash), keeping it in memory up to `memory` bytes and in an
//! anonymous temp file beyond that, and refusing it past `max_body`.
//! The temp file has no name on disk (or loses it at once), so it is gone on
//! every path: success, error, client disconnect, even a crash.

use std::path::PathBuf;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::file::FileBody;
use super::{BoxError, ProxyBody};

#[derive(Debug, Clone)]
pub struct SpoolLimits {
    pub max_body: u64,
    pub memory: usize,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("request body is larger than max_body ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("reading the request body from the client failed")]
    Client(#[source] BoxError),
    #[error("spooling the request body to {dir} failed")]
    Disk {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A body read to its end, ready to be sent with a known length.
pub enum Spooled {
    Memory { chunks: Vec<Bytes>, len: u64 },
    File { file: tokio::fs::File, len: u64 },
}

impl Spooled {
    pub fn len(&self) -> u64 {
        match self {
            Spooled::Memory { len, .. } | Spooled::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_on_disk(&self) -> bool {
        matches!(self, Spooled::File { .. })
    }

    pub fn into_body(self) -> ProxyBody {
        match self {
            Spooled::Memory { chunks, .. } if chunks.is_empty() => super::empty(),
            Spooled::Memory { chunks, .. } => {
                let stream = ChunksBody {
                    chunks: chunks.into(),
                };
                super::boxed(stream)
            }
            Spooled::File { file, len } => super::boxed(FileBody::new(file, len)),
        }
    }
}

/// Memory-spooled chunks sent back out one by one (no copy into one buffer).
struct ChunksBody {
    chunks: std::collections::VecDeque<Bytes>,
}

impl Body for ChunksBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.chunks
                .pop_front()
                .map(|c| Ok(http_body::Frame::data(c))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum())
    }
}

/// Reads `body` to its end. Trailers are dropped.
pub async fn spool<B>(
    body: B,
    limits: &SpoolLimits,
    mut observe: impl FnMut(&[u8]),
) -> Result<Spooled, SpoolError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    // Copied, not kept as received: a received chunk pins the whole read
    // buffer it was cut from, so a body of 1-byte chunks would hold far
    // more memory than `limits.memory` counts.
    let mut memory = bytes::BytesMut::new();
    let mut len: u64 = 0;
    let mut file: Option<BufWriter<tokio::fs::File>> = None;
    let disk = |source| SpoolError::Disk {
        dir: limits.dir.clone(),
        source,
    };

    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SpoolError::Client(e.into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > limits.max_body {
            return Err(SpoolError::TooLarge {
                limit: limits.max_body,
            });
        }
        observe(&data);
        match file.as_mut() {
            Some(f) => f.write_all(&data).await.map_err(disk)?,
            None if len as usize > limits.memory => {
                let mut f = open_spool_file(limits).await.map_err(disk)?;
                f.write_all(&memory).await.map_err(disk)?;
                memory = bytes::BytesMut::new();
                f.write_all(&data).await.map_err(disk)?;
                file = Some(f);
            }
            None => memory.extend_from_slice(&data),
        }
    }

    match file {
        None if memory.is_empty() => Ok(Spooled::Memory {
            chunks: Vec::new(),
            len,
        }),
        None => Ok(Spooled::Memory {
            chunks: vec![memory.freeze()],
            len,
        }),
        Some(mut f) => {
            f.flush().await.map_err(disk)?;
            let mut file = f.into_inner();
            file.rewind().await.map_err(disk)?;
            Ok(Spooled::File { file, len })
        }
    }
}

async fn open_spool_file(limits: &SpoolLimits) -> std::io::Result<BufWriter<tokio::fs::File>> {
    let dir = limits.dir.clone();
    let file = tokio::task::spawn_blocking(move || {
        let file = tempfile::tempfile_in(dir)?;
        // O_TMPFILE takes the umask's mode (often 0644), and /proc/PID/fd
        // still opens a file without a name: only countersign may read it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(BufWriter::with_capacity(
        256 * 1024,
        tokio::fs::File::from_std(file),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn chunked(parts: Vec<&'static [u8]>) -> ChunksBody {
        ChunksBody {
            chunks: parts.into_iter().map(Bytes::from_static).collect(),
        }
    }

    fn limits(dir: &std::path::Path, memory: usize, max: u64) -> SpoolLimits {
        SpoolLimits {
            max_body: max,
            memory,
            dir: dir.to_path_buf(),
        }
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_are_observed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let s = spool(
            chunked(vec![b"ab", b"cd"]),
            &limits(dir.path(), 16, 100),
            |c| seen.extend_from_slice(c),
        )
        .await
        .unwrap();
        assert!(!s.is_on_disk());
        assert_eq!(seen, b"abcd");
        let out = s.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"abcd");
    }

    /// Each received chunk may be a slice of a large read buffer; the spool
    /// keeps a copy of the bytes, never the buffers they came from.
    #[tokio::test]
    async fn memory_holds_the_bytes_not_the_buffers_they_were_cut_from() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = Bytes::from(vec![7u8; 64 * 1024]);
        let body = ChunksBody {
            chunks: (0..100).map(|i| buffer.slice(i..i + 1)).collect(),
        };
        let s = spool(body, &limits(dir.path(), 1024, 4096), |_| {})
            .await
            .unwrap();
        let Spooled::Memory { chunks, len } = &s else {
            panic!("in memory")
        };
        assert_eq!(*len, 100);
        assert_eq!(chunks.len(), 1);
        let range = buffer.as_ptr_range();
        assert!(!range.contains(&chunks[0].as_ptr()), "a copy, not a slice");
    }

    #[tokio::test]
    async fn large_bodies_go_to_an_unnamed_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(
            chunked(vec![b"0123", b"4567", b"89"]),
            &limits(dir.path(), 5, 100),
            |_| {},
        )
        .await
        .unwrap();
        assert!(s.is_on_disk());
        assert_eq!(s.len(), 10);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let out = s.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"0123456789");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = spool(
            chunked(vec![b"0123", b"4567"]),
            &limits(dir.path(), 2, 6),
            |_| {},
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, SpoolError::TooLarge { limit: 6 }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
