//! One client connection: buffered reads against deadlines (every wait bounded, a stop
//! request noticed within a quarter second), and, on a Unix socket, the file descriptors
//! that came with the bytes (`FILDES`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a blocked read looks at the stop flag.
const POLL: Duration = Duration::from_millis(250);
/// Descriptors kept per connection; more are closed at once.
const MAX_FDS: usize = 4;

/// A TCP or Unix stream.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Reads into `buf`; on a Unix socket with `recvmsg`, keeping passed descriptors.
    fn read_some(&mut self, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => {
                use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
                let mut anc = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [io::IoSliceMut::new(buf)];
                let got = rustix::net::recvmsg(&*s, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC)
                    .map_err(io::Error::from)?;
                for msg in anc.drain() {
                    if let RecvAncillaryMessage::ScmRights(passed) = msg {
                        for fd in passed {
                            if fds.len() < MAX_FDS {
                                fds.push_back(fd);
                            }
                            // Others drop here: closed.
                        }
                    }
                }
                Ok(got.bytes)
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// Why a read gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The deadline passed.
    Timeout,
    /// The client closed the connection.
    Eof,
    /// The daemon is stopping.
    Stopping,
    /// More bytes than allowed before the delimiter.
    TooLong,
    Io(io::ErrorKind),
}

pub struct Conn<'a> {
    pub stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pub fds: VecDeque<OwnedFd>,
    stop: &'a AtomicBool,
}

impl<'a> Conn<'a> {
    pub fn new(stream: Stream, stop: &'a AtomicBool) -> Conn<'a> {
        Conn {
            stream,
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
            fds: VecDeque::new(),
            stop,
        }
    }

    /// Bytes buffered and not yet taken.
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more into the buffer (at least one byte), by `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err(ReadError::Stopping);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            self.stream
                .set_read_timeout(left.min(POLL))
                .map_err(|e| ReadError::Io(e.kind()))?;
            let end = self.end;
            match self.stream.read_some(&mut self.buf[end..], &mut self.fds) {
                Ok(0) => return Err(ReadError::Eof),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(ReadError::Io(e.kind())),
            }
        }
    }

    /// Waits until at least one byte is buffered.
    pub fn wait_data(&mut self, deadline: Instant) -> Result<(), ReadError> {
        if self.start == self.end {
            self.fill(deadline)?;
        }
        Ok(())
    }

    /// The next byte, without taking it.
    pub fn peek(&mut self, deadline: Instant) -> Result<u8, ReadError> {
        self.wait_data(deadline)?;
        Ok(self.buf[self.start])
    }

    /// Bytes up to `delim` (taken, without it); `max` bytes at most before it.
    pub fn read_until(
        &mut self,
        delim: u8,
        max: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.pending()[scanned..].iter().position(|&b| b == delim) {
                let at = scanned + i;
                if at > max {
                    return Err(ReadError::TooLong);
                }
                let out = self.pending()[..at].to_vec();
                self.start += at + 1;
                return Ok(out);
            }
            scanned = self.pending().len();
            if scanned > max {
                return Err(ReadError::TooLong);
            }
            self.fill(deadline)?;
        }
    }

    /// What a legacy (unprefixed) command is: up to a newline if one is buffered, else
    /// all that one read brought, as clamd does.
    pub fn read_legacy(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        self.wait_data(deadline)?;
        let p = self.pending();
        let (line, used) = match p.iter().position(|&b| b == b'\n') {
            Some(i) => (&p[..i], i + 1),
            None => (p, p.len()),
        };
        if line.len() > max {
            return Err(ReadError::TooLong);
        }
        let out = line.to_vec();
        self.start += used;
        Ok(out)
    }

    /// Exactly `out.len()` bytes.
    pub fn read_exact(&mut self, out: &mut [u8], deadline: Instant) -> Result<(), ReadError> {
        let mut got = 0;
        while got < out.len() {
            self.wait_data(deadline)?;
            let p = self.pending();
            let n = p.len().min(out.len() - got);
            out[got..got + n].copy_from_slice(&p[..n]);
            self.start += n;
            got += n;
        }
        Ok(())
    }

    /// Passes up to `n` bytes to `sink` as they come.
    pub fn copy_to(
        &mut self,
        mut n: u64,
        deadline: Instant,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ReadError> {
        while n > 0 {
            self.wait_data(deadline)?;
            let p = self.pending();
            let k = (p.len() as u64).min(n) as usize;
            sink(&p[..k]).map_err(|e| ReadError::Io(e.kind()))?;
            self.start += k;
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads and discards what comes, until `idle` passes without data, `until`, or `max`
    /// bytes.
    pub fn drain(&mut self, idle: Duration, until: Instant, max: u64) {
        let mut seen: u64 = 0;
        while seen <= max {
            self.start = self.end;
            let deadline = until.min(Instant::now() + idle);
            if self.fill(deadline).is_err() {
                return;
            }
            seen += (self.end - self.start) as u64;
        }
    }

    /// Waits for a passed descriptor, reading (and keeping) bytes until one comes.
    pub fn take_fd(&mut self, deadline: Instant) -> Result<OwnedFd, ReadError> {
        loop {
            if let Some(fd) = self.fds.pop_front() {
                return Ok(fd);
            }
            if self.pending().len() >= self.buf.len() / 2 {
                return Err(ReadError::TooLong);
            }
            self.fill(deadline)?;
        }
    }

    /// Takes one byte if it is `b` (the byte a FILDES client sends with its descriptor).
    pub fn skip_byte(&mut self, b: u8) {
        if self.pending().first() == Some(&b) {
            self.start += 1;
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }
}
