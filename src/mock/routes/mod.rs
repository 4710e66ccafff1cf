//! The mock's routes: what each request gets, by path and configuration. [`handle`] is the
//! [`Handler`](super::wire::Handler) the wire calls for every well-formed request; it counts the
//! request, picks a route and answers through the wire's [`Conn`]. The answers of `/` and
//! `/__counters` live here, the OpenAI ones in `llm`, the misbehaviours in `fault`. Nothing here
//! reads a socket or writes a head by hand: that is the wire's.

mod fault;
mod llm;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::config::Fault;
use super::wire::{Conn, Method, Next, Request, keep_or_close, write_head};
use llm::Api;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Counters,
    Llm(Api),
    Fault(Result<Fault, ()>),
    Plain,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            "/__counters" => Route::Counters,
            "/v1/completions" => Route::Llm(Api::Completions),
            "/v1/chat/completions" => Route::Llm(Api::Chat),
            _ => match path.strip_prefix("/fault/") {
                Some(name) => Route::Fault(name.parse().map_err(|_| ())),
                None => Route::Plain,
            },
        }
    }
}

/// Answers one request; the wire keeps or ends the connection as the result says.
pub(super) fn handle(conn: &mut Conn, req: Request) -> Next {
    let route = Route::of(&req.path);
    if route == Route::Counters {
        return counters(conn, &req);
    }
    let counters = &conn.shared.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let api = match route {
        Route::Llm(api) => {
            counters.llm_requests.fetch_add(1, Ordering::Relaxed);
            Some(api)
        }
        _ => None,
    };
    let fault = match (conn.shared.cfg.fault, route) {
        (Some(fault), _) | (None, Route::Fault(Ok(fault))) => Some(fault),
        _ => None,
    };
    if let Some(fault) = fault {
        return fault::apply(conn, &req, fault, api.unwrap_or(Api::Completions));
    }
    match route {
        Route::Llm(api) => llm::answer(conn, &req, api, None),
        Route::Fault(Err(())) => unknown_fault(conn, &req),
        _ => plain(conn, &req),
    }
}

/// `GET /__counters`: a snapshot as JSON. Not counted: reading the counters must not change them.
fn counters(conn: &mut Conn, req: &Request) -> Next {
    let json = serde_json::to_vec(&conn.shared.counters.snapshot()).unwrap_or_default();
    conn.out.clear();
    write_head(
        &mut conn.out,
        200,
        "application/json",
        Some(json.len()),
        req.keep_alive,
        &[],
    );
    conn.out.extend_from_slice(&json);
    if !conn.send_out() {
        return Next::Abort;
    }
    keep_or_close(req.keep_alive)
}

/// `/fault/<name>` with a name that is none of [`Fault::ALL`]: 404 listing them.
fn unknown_fault(conn: &mut Conn, req: &Request) -> Next {
    let mut body = String::from("{\"error\":{\"message\":\"unknown fault; expected one of:");
    for fault in Fault::ALL {
        body.push(' ');
        body.push_str(fault.name());
    }
    body.push_str("\"}}");
    conn.answer_json(req, 404, body.as_bytes(), &[])
}

/// `/`: the seeded 200/400 mix after the configured delay.
fn plain(conn: &mut Conn, req: &Request) -> Next {
    let ordinal = conn.shared.plain_ordinal.fetch_add(1, Ordering::Relaxed);
    let status = conn.shared.cfg.status_for(ordinal);
    let Some(due) = req.end.checked_add(conn.shared.cfg.delay) else {
        return Next::Abort;
    };
    if !conn.sleep_until(due) {
        return Next::Abort;
    }
    let shared = Arc::clone(&conn.shared);
    let body: &[u8] = if status == 200 {
        shared.cfg.body.as_bytes()
    } else {
        br#"{"error":{"message":"mock error (seeded mix)"}}"#
    };
    conn.out.clear();
    write_head(
        &mut conn.out,
        status,
        "application/json",
        Some(body.len()),
        req.keep_alive,
        &[],
    );
    if req.method != Method::Head {
        conn.out.extend_from_slice(body);
    }
    conn.shared.counters.count_status(status);
    if !conn.send_out() {
        return Next::Abort;
    }
    keep_or_close(req.keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::of("/"), Route::Plain);
        assert_eq!(Route::of("/anything"), Route::Plain);
        assert_eq!(Route::of("/__counters"), Route::Counters);
        assert_eq!(Route::of("/v1/completions"), Route::Llm(Api::Completions));
        assert_eq!(Route::of("/v1/chat/completions"), Route::Llm(Api::Chat));
        assert_eq!(
            Route::of("/fault/429"),
            Route::Fault(Ok(Fault::TooManyRequests))
        );
        assert_eq!(Route::of("/fault/nope"), Route::Fault(Err(())));
    }
}
