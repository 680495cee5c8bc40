//! One episode's session with an environment server: a WebSocket to its `/ws`, with a deadline
//! on every answer.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::{Message, WebSocket};

use super::protocol::{self, ReplyError, Step};

/// An open session: one environment instance on the server.
pub struct Session {
    socket: WebSocket<TcpStream>,
    url: String,
}

impl Session {
    /// Opens a session at `url` (`ws://host:port/ws`); `timeout` bounds the connection and every
    /// answer after it. `Err` is one line.
    pub fn open(url: &str, timeout: Duration) -> Result<Session, String> {
        let fail = |why: String| format!("cannot open a session at {url}: {why}");
        let addr = address(url).map_err(|e| fail(e.to_string()))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(e.to_string()))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| fail(e.to_string()))?;
        let (socket, _) = tungstenite::client(url, stream).map_err(|e| fail(e.to_string()))?;
        Ok(Session {
            socket,
            url: url.to_string(),
        })
    }

    /// Sends a reset or a step and reads the answer. `Err` is one line.
    pub fn request(&mut self, message: String) -> Result<Step, String> {
        self.socket
            .send(Message::text(message))
            .map_err(|e| self.failed(e))?;
        loop {
            match self.socket.read().map_err(|e| self.failed(e))? {
                Message::Text(text) => {
                    return protocol::parse(&text).map_err(|e| match e {
                        ReplyError::Server(line) => {
                            format!("the environment at {} reported: {line}", self.url)
                        }
                        ReplyError::Malformed(line) => format!(
                            "the environment at {} sent a malformed reply: {line}",
                            self.url
                        ),
                    });
                }
                Message::Close(_) => {
                    return Err(format!(
                        "the environment at {} closed the session",
                        self.url
                    ));
                }
                // Pings are answered by tungstenite itself.
                _ => {}
            }
        }
    }

    /// Ends the session politely; errors are of no consequence then.
    pub fn close(mut self) {
        let _ = self.socket.send(Message::text(protocol::close()));
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }

    fn failed(&self, e: tungstenite::Error) -> String {
        match e {
            tungstenite::Error::Io(io) if is_timeout(&io) => {
                format!("the environment at {} did not answer in time", self.url)
            }
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                format!("the environment at {} closed the session", self.url)
            }
            other => format!("the session at {} failed: {other}", self.url),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The socket address of a `ws://host:port/path` URL.
fn address(url: &str) -> io::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| io::Error::other("expected a ws:// URL"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{authority} resolves to no address")))
}
