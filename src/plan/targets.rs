//! A targets file (`--targets FILE`, vegeta's "http" format): one `METHOD URL` line per target,
//! then optional `Name: value` header lines and an optional `@path` body line; a blank line
//! between targets; `#` starts a comment line. Parsed and checked here once, before the run;
//! every error names the file and the line. Turning the targets into request bytes and the
//! table that says which one request `i` sends is [`super::workload::Requests`]'s; counting per
//! target is the engine's.
//!
//! Every target goes to the run's one origin (scheme, host and port): the engine resolves one
//! host and keeps connections to it, so a file naming two origins is refused with the line of
//! the first one that differs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checks::Limits;
use super::input::Input;
use super::request::Shaped;
use super::target::{Target, public_url};
use super::workload::{Requests, bytes_text, max_workload_bytes, within};
use super::{PlanError, defaults, invalid};
use crate::http1::build_request;
use crate::rng::SplitMix64;

/// Slots of a random order per target: request `i` goes to `slot[i % len]`, drawn uniformly,
/// so the table repeats only after this many requests per target (at most [`MAX_SLOTS`]).
const SLOTS_PER_TARGET: usize = 1024;
const MAX_SLOTS: usize = 1 << 20;

/// The seed stream of the random order (apart from the workload's, see `workload::derive`).
const ORDER_SEED: u64 = 0x7461_7267_6574_7321;

/// One target as the file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// Upper case.
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The `@path` body line's path (relative paths from the working directory, as vegeta).
    pub body: Option<PathBuf>,
    /// The file, and the 1-based line of the `METHOD URL` line, for errors found later.
    pub file: Arc<Path>,
    pub line: usize,
}

impl TargetSpec {
    /// The report's key: `METHOD URL` with the query's values hidden as elsewhere.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, public_url(&self.url))
    }
}

/// Reads and parses the targets file at `path` (at most [`defaults::MAX_WORKLOAD_BYTES`] of
/// it: the requests it makes are budgeted by the plan). Errors name the file, and the line.
pub fn read(path: &Path) -> Result<Vec<TargetSpec>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(defaults::MAX_WORKLOAD_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > defaults::MAX_WORKLOAD_BYTES {
        return Err(format!(
            "{}: larger than {}",
            path.display(),
            bytes_text(defaults::MAX_WORKLOAD_BYTES)
        ));
    }
    parse(&text, path)
}

/// The bytes the targets' requests will hold, estimated from the file (bodies by their size on
/// disk): within the `--max-workload-bytes` budget, or refused naming it.
pub(super) fn budget(input: &Input, shaped: &Shaped, limits: &Limits) -> Result<u64, PlanError> {
    let max = max_workload_bytes(&input.workload, limits)?;
    let head = shaped.requests.total_bytes() as u64;
    let body = input.body.as_ref().map_or(0, |b| b.len() as u64);
    let bytes = input.targets.iter().fold(0u64, |sum, t| {
        let own = t.url.len()
            + t.headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>();
        let body = match &t.body {
            Some(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            None => body,
        };
        sum.saturating_add(head + own as u64 + body)
    });
    within(max, bytes, "targets", || {
        format!("{} targets", input.targets.len())
    })
}

/// The request bytes of every target (target `k` is distinct request `k`), and which one
/// request `i` sends: in turn, or drawn with the run's `seed` (`targets_random`). A target's
/// headers replace the run's of the same name; its `@file` body replaces the run's body.
pub(super) fn requests(
    input: &Input,
    shaped: &Shaped,
    count: u64,
    seed: u64,
) -> Result<Requests, PlanError> {
    if input.llm.is_some() {
        return Err(invalid(
            "targets",
            "a targets file applies to `pacer bench` (an LLM run's requests are its prompts)"
                .into(),
        ));
    }
    let at = |t: &TargetSpec, msg: String| {
        invalid("targets", format!("{}:{}: {msg}", t.file.display(), t.line))
    };
    let mut distinct = Vec::with_capacity(input.targets.len());
    for t in &input.targets {
        if t.method == "HEAD" {
            // A HEAD answer has no body whatever its length says: the run reads bodies one way.
            return Err(at(t, "HEAD cannot be mixed with other targets".into()));
        }
        let target = Target::parse(&t.url).map_err(|e| at(t, e))?;
        let mut headers: Vec<(String, String)> = shaped
            .headers
            .iter()
            .filter(|(n, _)| !t.headers.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        headers.extend(t.headers.iter().cloned());
        let body = match &t.body {
            Some(p) => {
                std::fs::read(p).map_err(|e| at(t, format!("cannot read @{}: {e}", p.display())))?
            }
            None => input.body.clone().unwrap_or_default().into_bytes(),
        };
        distinct.push(
            build_request(
                &t.method,
                &target.host_header,
                &target.path,
                &headers,
                &body,
            )
            .into(),
        );
    }
    let k = distinct.len();
    // Every index below k fits u32: a targets file within the budget has fewer lines.
    let slot: Box<[u32]> = if input.targets_random {
        let mut len = (k * SLOTS_PER_TARGET).clamp(k, MAX_SLOTS.max(k));
        if count > 0 {
            len = len.min(usize::try_from(count).unwrap_or(usize::MAX)).max(k);
        }
        let mut rng = SplitMix64::new(seed ^ ORDER_SEED);
        (0..len).map(|_| rng.below(k) as u32).collect()
    } else {
        (0..k as u32).collect()
    };
    Ok(Requests::spread(distinct, slot))
}

/// Parses the text of a targets file (`file` only names it in errors). At least one target;
/// each URL must parse, and all must share the first one's origin.
pub fn parse(text: &str, file: &Path) -> Result<Vec<TargetSpec>, String> {
    let at = |line: usize, msg: String| format!("{}:{line}: {msg}", file.display());
    let name: Arc<Path> = Arc::from(file);
    let mut out: Vec<TargetSpec> = Vec::new();
    let mut origin: Option<(bool, String, u16)> = None;
    // Inside a target: its header and body lines follow until a blank line.
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            open = false;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if open {
            let t = out.last_mut().ok_or_else(|| at(n, "no target".into()))?;
            if let Some(path) = line.strip_prefix('@') {
                if t.body.is_some() {
                    return Err(at(n, "a second body line for this target".into()));
                }
                if path.trim().is_empty() {
                    return Err(at(n, "`@` needs a file path".into()));
                }
                t.body = Some(PathBuf::from(path.trim()));
                continue;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                at(
                    n,
                    format!(
                        "{line:?} is neither a `Name: value` header nor an `@file` body (a blank \
                         line ends a target)"
                    ),
                )
            })?;
            if t.body.is_some() {
                return Err(at(n, "a header after the body line".into()));
            }
            let (name, value) = (name.trim(), value.trim());
            if !crate::http1::is_token(name) || !crate::http1::is_field_value(value) {
                return Err(at(n, format!("invalid header {line:?}")));
            }
            t.headers.push((name.to_string(), value.to_string()));
            continue;
        }
        let (method, url) = line
            .split_once(char::is_whitespace)
            .map(|(m, u)| (m, u.trim()))
            .ok_or_else(|| at(n, format!("{line:?} is not `METHOD URL`")))?;
        if !crate::http1::is_token(method) || url.is_empty() || url.contains(char::is_whitespace) {
            return Err(at(n, format!("{line:?} is not `METHOD URL`")));
        }
        let target = Target::parse(url).map_err(|e| at(n, e))?;
        let here = (target.tls, target.host.to_ascii_lowercase(), target.port);
        match &origin {
            None => origin = Some(here),
            Some(first) if *first != here => {
                return Err(at(
                    n,
                    format!(
                        "{url} is not on the first target's origin (scheme, host and port): a \
                         run sends to one origin"
                    ),
                ));
            }
            Some(_) => {}
        }
        out.push(TargetSpec {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            file: Arc::clone(&name),
            line: n,
        });
        open = true;
    }
    if out.is_empty() {
        return Err(format!("{}: no target in the file", file.display()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<TargetSpec>, String> {
        parse(text, Path::new("t.txt"))
    }

    #[test]
    fn vegetas_format_with_headers_bodies_and_comments() {
        let t = p(
            "# two targets\nGET http://h:8/a?key=s\nX-A: 1\n\npost http://h:8/b\n\
                   Content-Type: application/json\n@body.json\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].method.as_str(), t[0].line), ("GET", 2));
        assert_eq!(t[0].headers, [("X-A".to_string(), "1".to_string())]);
        assert_eq!(t[0].key(), "GET http://h:8/a?key=***");
        assert_eq!(t[1].method, "POST");
        assert_eq!(t[1].body.as_deref(), Some(Path::new("body.json")));
        assert_eq!(t[1].line, 5);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        for (text, says) in [
            ("", "t.txt: no target"),
            ("GET\n", "t.txt:1: \"GET\" is not `METHOD URL`"),
            ("GET ftp://h/\n", "t.txt:1: URL scheme"),
            ("GET http://h/\nnot a header\n", "t.txt:2: \"not a header\""),
            ("GET http://h/\n@a\n@b\n", "t.txt:3: a second body line"),
            (
                "GET http://h/\n\nGET http://other/\n",
                "t.txt:3: http://other/ is not on",
            ),
            ("GET http://h/\n\nGET https://h/\n", "t.txt:3:"),
            ("GET http://h/\nBad Name: x\n", "t.txt:2: invalid header"),
        ] {
            let e = p(text).unwrap_err();
            assert!(e.starts_with(says), "{text:?}: {e}");
        }
    }
}
