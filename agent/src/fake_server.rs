//! For unit tests: a one-thread HTTP server answering each request with the
//! next of its answers, and recording what it was asked.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// What the server answers to one request.
pub struct Answer {
    pub status: u16,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: &'static str,
    /// A JSON body (empty for none).
    pub body: &'static str,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self { status, headers: "", body: "" }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Asked {
    /// With its query string.
    pub path: String,
    /// The bearer credential, if any.
    pub bearer: String,
}

/// Serves `answers`, one per request; returns the base URL and what was asked.
pub fn serve(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<Asked>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let asked = Arc::new(Mutex::new(vec![]));
    let seen = asked.clone();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let (mut length, mut bearer) = (0, String::new());
            loop {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization: bearer ") {
                    bearer = line["authorization: bearer ".len()..].trim().to_string();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
            seen.lock().expect("the log").push(Asked { path, bearer });
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {} X\r\n{}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                answer.status,
                answer.headers,
                answer.body.len(),
                answer.body
            );
        }
    });
    (base, asked)
}
