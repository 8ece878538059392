//! A deliberately small HTTP/1.1 server side: one request per connection, `Content-Length`
//! bodies only, every read bounded in size and time. It knows nothing about the exchange.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Largest request line plus headers accepted.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Each read on a connection waits at most this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request must arrive within this long, however slowly it trickles in.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes requested from the socket per read.
const READ_CHUNK_BYTES: usize = 8 * 1024;

const _: () = assert!(HEAD_BYTES_MAX < BODY_BYTES_MAX);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The target's path, without the query string.
    pub path: String,
    /// Decoded query parameters in the order given.
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request could not be read, with the status to answer (`None`: just close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub status: Option<u16>,
    pub message: String,
}

fn bad(status: u16, message: impl Into<String>) -> ReadError {
    ReadError {
        status: Some(status),
        message: message.into(),
    }
}

fn gone(message: impl Into<String>) -> ReadError {
    ReadError {
        status: None,
        message: message.into(),
    }
}

/// Reads one request from `stream`; a socket must be blocking with `READ_TIMEOUT` set.
pub fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let started = Instant::now();
    let mut buffer: Vec<u8> = Vec::new();
    let head_end = loop {
        if let Some(position) = find_head_end(&buffer) {
            break position;
        }
        if buffer.len() > HEAD_BYTES_MAX {
            return Err(bad(431, "request head too large"));
        }
        read_some(stream, &mut buffer, started)?;
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| bad(400, "head not UTF-8"))?;
    let (method, target, content_length) = parse_head(head)?;
    let body_start = head_end + 4;
    let total = body_start + content_length;
    // Bounded: each read adds at least one byte or fails, and `total` is capped above.
    while buffer.len() < total {
        read_some(stream, &mut buffer, started)?;
    }
    buffer.truncate(total);
    let (path, query) = split_target(&target);
    Ok(Request {
        method,
        path,
        query,
        body: buffer.split_off(body_start),
    })
}

fn read_some(
    stream: &mut impl Read,
    buffer: &mut Vec<u8>,
    started: Instant,
) -> Result<(), ReadError> {
    if started.elapsed() > REQUEST_DEADLINE {
        return Err(gone("request too slow"));
    }
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    match stream.read(&mut chunk) {
        Ok(0) => Err(gone("connection closed mid-request")),
        Ok(count) => {
            buffer.extend_from_slice(&chunk[..count]);
            Ok(())
        }
        Err(error) => Err(gone(format!("read failed: {error}"))),
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Method, target and body length from the request line and headers.
fn parse_head(head: &str) -> Result<(String, String, usize), ReadError> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(bad(400, "unsupported request line"));
    }
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(400, "malformed header"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| bad(400, "bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(
                411,
                "chunked bodies are not supported; send content-length",
            ));
        }
    }
    if content_length > BODY_BYTES_MAX {
        return Err(bad(413, "body too large"));
    }
    Ok((method.to_string(), target.to_string(), content_length))
}

fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect();
    (path.to_string(), pairs)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        let hex = bytes
            .get(position + 1..position + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                position += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                position += 1;
            }
            _ => {
                out.push(byte);
                position += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes one complete response and closes the write side.
pub fn write_response(stream: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_query_parse() {
        let head = "GET /exchange/v1/public/get-tickers?instrument_name=BTC_USD&x=a%20b+c HTTP/1.1\r\nHost: h\r\nContent-Length: 0";
        let (method, target, length) = parse_head(head).expect("valid");
        assert_eq!((method.as_str(), length), ("GET", 0));
        let (path, query) = split_target(&target);
        assert_eq!(path, "/exchange/v1/public/get-tickers");
        assert_eq!(
            query,
            [
                ("instrument_name".to_string(), "BTC_USD".to_string()),
                ("x".to_string(), "a b c".to_string())
            ]
        );
    }

    #[test]
    fn oversized_and_chunked_bodies_are_refused() {
        let big = format!("POST / HTTP/1.1\r\nContent-Length: {}", BODY_BYTES_MAX + 1);
        assert_eq!(parse_head(&big).unwrap_err().status, Some(413));
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked";
        assert_eq!(parse_head(chunked).unwrap_err().status, Some(411));
        assert_eq!(parse_head("nonsense").unwrap_err().status, Some(400));
    }
}
