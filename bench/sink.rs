//! Upload sink for bench/run.sh (scenario 4): an HTTP/1.1 server that reads every request
//! body to the end, discards it, and only then answers `200` with the byte count. Standard
//! library only, so run.sh builds it with plain `rustc -O` (no Cargo, no dependencies).
//!
//! Usage: sink ADDR   (e.g. 127.0.0.1:28089). One thread per connection; keep-alive.
//! Handles Content-Length and chunked request bodies. Not a general server: bench use only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

const BUF: usize = 256 * 1024;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:28089".to_string());
    let listener = TcpListener::bind(&addr).expect("bind");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::with_capacity(BUF, stream);
    let mut scratch = vec![0u8; BUF];
    loop {
        // Request head.
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut close = false;
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let http10 = line.trim_end().ends_with("HTTP/1.0");
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim().to_ascii_lowercase();
                match name.as_str() {
                    "content-length" => content_length = value.parse().ok(),
                    "transfer-encoding" => chunked = value.contains("chunked"),
                    "connection" => close = value.contains("close"),
                    "expect" if value == "100-continue" => {
                        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                    }
                    _ => {}
                }
            }
        }
        // Body: read to the end, discard.
        let mut seen: u64 = 0;
        if chunked {
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let size_text = line.trim().split(';').next().unwrap_or("0");
                let size = u64::from_str_radix(size_text, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers until the empty line.
                    loop {
                        line.clear();
                        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                discard(&mut r, &mut scratch, size)?;
                seen += size;
                line.clear();
                r.read_line(&mut line)?; // CRLF after the chunk
            }
        } else if let Some(n) = content_length {
            discard(&mut r, &mut scratch, n)?;
            seen = n;
        }
        let body = format!("{seen}\n");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close || http10 { "Connection: close\r\n" } else { "" }
        );
        out.write_all(head.as_bytes())?;
        out.write_all(body.as_bytes())?;
        if close || http10 {
            return Ok(());
        }
    }
}

fn discard(r: &mut BufReader<TcpStream>, scratch: &mut [u8], mut left: u64) -> std::io::Result<()> {
    while left > 0 {
        let want = usize::try_from(left.min(scratch.len() as u64)).unwrap_or(scratch.len());
        let n = r.read(&mut scratch[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(())
}
