//! Packet framing over the socket: the wire's 4-byte frame headers and
//! sequence ids, 16 MiB continuation frames, the read buffer and its
//! timeout, and the stream's upgrade to TLS. The authentication exchange and
//! the connection's commands both speak through a [`PacketIo`], so it sits
//! below both.

use crate::error::{Error, Result};
use crate::tls;
use bytes::{Buf, Bytes, BytesMut};
use mysql_common_037::constants::CapabilityFlags;
use mysql_common_037::io::ParseBuf;
use mysql_common_037::packets::ErrPacket;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest payload of one wire packet; longer payloads are split.
pub(crate) const MAX_PAYLOAD: usize = 0xff_ffff;
/// Reads ask the socket for at least this much room.
const READ_CHUNK: usize = 256 * 1024;

/// A socket that reads and writes whole logical packets.
pub(crate) struct PacketIo {
    stream: Stream,
    rbuf: BytesMut,
    /// Frames of a payload over 16 MiB read so far.
    joining: BytesMut,
    seq: u8,
    read_timeout: Option<Duration>,
    /// Cap on one logical packet from the server.
    max_packet: usize,
}

impl PacketIo {
    /// Frames packets over a fresh TCP connection.
    pub(crate) fn new(tcp: TcpStream, read_timeout: Option<Duration>, max_packet: usize) -> Self {
        Self {
            stream: Stream::Plain(tcp),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            joining: BytesMut::new(),
            seq: 0,
            read_timeout,
            max_packet,
        }
    }

    /// Changes the read timeout.
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Restarts the sequence ids, as each command does.
    pub(crate) fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// Upgrades the plain socket to TLS (after the SSL request was sent).
    ///
    /// # Errors
    /// [`Error::Tls`]/[`Error::Certificate`] when the TLS handshake fails.
    pub(crate) async fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(Error::Tls("TLS negotiated twice".into()));
        };
        let tls_stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(tls::handshake_error)?;
        self.stream = Stream::Tls(Box::new(tls_stream));
        Ok(())
    }

    /// Reads one logical packet (joining 16 MiB continuation packets); the
    /// result shares the read buffer's allocation when it fits one frame.
    /// Cancel-safe: bytes read before a cancellation stay buffered.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection, [`Error::Timeout`] when the read
    /// timeout passes, [`Error::PacketTooLarge`] when the packet would pass
    /// [`ConnectOptions::max_packet_bytes`](crate::conn::ConnectOptions::max_packet_bytes) (checked on each frame's header,
    /// before its bytes are buffered).
    pub(crate) async fn read_packet(&mut self) -> Result<Bytes> {
        loop {
            let frame = self.read_frame().await?;
            if self.joining.is_empty() && frame.len() < MAX_PAYLOAD {
                return Ok(frame);
            }
            // Payloads of 16 MiB and more come in several frames: join them
            // (one copy). The partial payload lives in `self`, so a cancelled
            // read loses nothing.
            self.joining.extend_from_slice(&frame);
            if frame.len() < MAX_PAYLOAD {
                return Ok(self.joining.split().freeze());
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        self.fill(4).await?;
        let len = usize::from(self.rbuf[0])
            | usize::from(self.rbuf[1]) << 8
            | usize::from(self.rbuf[2]) << 16;
        let seq = self.rbuf[3];
        if self.joining.len().saturating_add(len) > self.max_packet {
            // The rest of the packet stays unread: the connection is unusable.
            self.joining = BytesMut::new();
            return Err(Error::PacketTooLarge {
                limit: self.max_packet,
            });
        }
        self.fill(4 + len).await?;
        self.rbuf.advance(4);
        self.seq = seq.wrapping_add(1);
        Ok(self.rbuf.split_to(len).freeze())
    }

    /// Makes sure `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> Result<()> {
        while self.rbuf.len() < n {
            self.rbuf.reserve((n - self.rbuf.len()).max(READ_CHUNK));
            let read = self.stream.read_buf(&mut self.rbuf);
            let got = match self.read_timeout {
                Some(limit) => match tokio::time::timeout(limit, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Error::Timeout {
                            what: "reading from the server",
                            after: limit,
                        });
                    }
                },
                None => read.await,
            }
            .map_err(Error::Io)?;
            if got == 0 {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
        Ok(())
    }

    /// Writes one logical packet with the current sequence id.
    ///
    /// # Errors
    /// [`Error::Io`] on a broken connection.
    pub(crate) async fn write_packet(&mut self, payload: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 4 * (payload.len() / MAX_PAYLOAD + 1));
        let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
        if payload.is_empty() {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len();
            out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq]);
            out.extend_from_slice(chunk);
            self.seq = self.seq.wrapping_add(1);
            if chunks.peek().is_none() && len == MAX_PAYLOAD {
                out.extend_from_slice(&[0, 0, 0, self.seq]);
                self.seq = self.seq.wrapping_add(1);
            }
        }
        self.stream.write_all(&out).await.map_err(Error::Io)?;
        self.stream.flush().await.map_err(Error::Io)
    }

    /// Shuts the socket down.
    ///
    /// # Errors
    /// I/O errors while closing.
    pub(crate) async fn shutdown(&mut self) -> Result<()> {
        self.stream.shutdown().await.map_err(Error::Io)
    }
}

/// Decodes an ERR packet into the matching typed error.
pub(crate) fn server_error(packet: &[u8], caps: CapabilityFlags) -> Error {
    match ParseBuf(packet).parse::<ErrPacket<'_>>(caps) {
        Ok(ErrPacket::Error(e)) => Error::Server {
            code: e.error_code(),
            state: e
                .sql_state_ref()
                .map(|s| s.as_str().into_owned())
                .unwrap_or_default(),
            message: String::from_utf8_lossy(e.message_ref()).into_owned(),
        },
        Ok(ErrPacket::Progress(_)) => Error::Protocol("unexpected progress report".into()),
        Err(e) => Error::Protocol(format!("bad ERR packet: {e}")),
    }
}

/// The socket, plain or wrapped in TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Transient state while upgrading to TLS.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}
