//! Response bodies written by blocking code a piece at a time, so a large
//! answer (a long prompt's attention as nested JSON is gigabytes) is never
//! held in memory whole: at most a few chunks wait for the socket.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;

use logitlens_engine::EngineError;

/// Bytes gathered before a chunk is handed to the connection.
const CHUNK: usize = 256 << 10;
/// Chunks waiting for the connection at most (the writer blocks beyond).
const IN_FLIGHT: usize = 4;

/// A body whose bytes `write` produces off the async runtime. An error
/// after the first byte ends the body early (the status is already sent);
/// a client that goes away stops the writer at its next chunk. `guard`
/// lives as long as the body is read: dropped with it when the client goes
/// away, so it can stop work that writes nothing for a while.
pub fn blocking_body<G: Send + Unpin + 'static>(
    guard: G,
    write: impl FnOnce(&mut dyn Write) -> Result<(), EngineError> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = write(&mut w).and_then(|()| Ok(w.send()?));
        if let Err(e) = result {
            if !tx.is_closed() {
                tracing::warn!("a response ended early: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    Body::from_stream(Guarded {
        chunks: ReceiverStream::new(rx),
        _guard: guard,
    })
}

/// The body's chunks, and what lives as long as they are read.
struct Guarded<G> {
    chunks: ReceiverStream<Result<Bytes, std::io::Error>>,
    _guard: G,
}

impl<G: Unpin> Stream for Guarded<G> {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.chunks).poll_next(cx)
    }
}

struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A JSON body serialized off the async runtime as it is sent: a value
/// whose parts render as they are written (a run's attention, a layer at a
/// time) is never held whole.
pub fn json_body<T: serde::Serialize + Send + 'static>(value: T) -> Body {
    blocking_body((), move |w| {
        serde_json::to_writer(w, &value).map_err(|e| EngineError::Io(e.into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Sets its flag when dropped.
    struct Flag(Arc<AtomicBool>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A body dropped while its writer is busy writing nothing (a stopped
    /// generation computing its final run) drops its guard at once: the
    /// guard is what cancels the work, so the work does not go on holding
    /// the run slot until it next writes. (A streamed generation used to
    /// keep its guard inside the writer: Stop then left the slot taken.)
    #[tokio::test]
    async fn dropping_the_body_drops_its_guard_while_the_writer_is_silent() {
        let dropped = Arc::new(AtomicBool::new(false));
        let (started, running) = std::sync::mpsc::channel();
        let seen = dropped.clone();
        let body = blocking_body(Flag(dropped.clone()), move |_| {
            started.send(()).unwrap();
            // Busy without writing, until the guard says the client left.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !seen.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        });
        running.recv().unwrap();
        assert!(!dropped.load(Ordering::SeqCst));
        drop(body);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the guard lives on with the writer"
        );
    }
}
