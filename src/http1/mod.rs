//! STUB (replaced by the http1 branch): signatures only, so the rest compiles.
#![allow(unused_variables, dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseError {
    HeadersTooLarge,
    BodyEndedEarly,
}
impl ResponseError {
    pub fn reason(self) -> &'static str {
        todo!()
    }
}
pub fn build_request(
    method: &str,
    host_header: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut s = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {host_header}\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    let mut v = s.into_bytes();
    v.extend_from_slice(body);
    v
}
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    Close,
    Empty,
}
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head {
    pub status: u16,
    pub len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
    pub interim: bool,
    pub server_ttft: Option<f64>,
}
pub fn parse_head(buf: &[u8], method_is_head: bool) -> Result<Option<Head>, ResponseError> {
    todo!()
}
pub struct Body;
pub struct Fed {
    pub consumed: usize,
    pub done: bool,
}
impl Body {
    pub fn new(framing: Framing) -> Self {
        todo!()
    }
    pub fn reset(&mut self, framing: Framing) {
        todo!()
    }
    pub fn feed(&mut self, input: &[u8], on_data: impl FnMut(&[u8])) -> Result<Fed, ResponseError> {
        todo!()
    }
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        todo!()
    }
    pub fn is_done(&self) -> bool {
        todo!()
    }
}
