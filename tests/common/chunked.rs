//! HTTP/1.1 chunked bodies, read back (the page's answers, in the tests and the
//! benchmark, which read raw HTTP).

/// The body of a chunked answer: its chunks joined.
pub fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}
