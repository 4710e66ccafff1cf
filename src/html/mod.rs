//! The HTML report: one self-contained page (inline CSS, inline script, inline SVG; no network)
//! drawn from a report's JSON, the same JSON `--json` prints and the API returns; or, from a
//! sweep's JSON (`"kind": "sweep"`), the sweep's page (`sweep.js`: latency, achieved rate and
//! errors against the asked rate, the knee, the table of steps); or, from a comparison's JSON
//! (`"kind": "compare"`), the comparison's page (`compare.js`: both runs' percentiles on one
//! chart per family, the figures and their verdicts).
//!
//! This module owns the page: its template, style and chart script (the `page.html`, `report.css`
//! and `report.js` beside this file, compiled in), and the one unsafe step, putting data from the
//! report into HTML. It reads the report only as JSON, so it renders a report saved by any version
//! that has `config` and `total_requests`, and shows fields it does not know in a table of their
//! own. What the report contains (the timeline, the histograms) is [`crate::report`]'s business;
//! when they are missing the page says "no data" for those charts.
//!
//! Safety of the page: the report's strings (URLs, header names, error messages written by
//! servers) are untrusted. Rust puts them in exactly two places: the `<title>`, HTML-escaped, and
//! one `<script type="application/json">` element, with every `<` written as `\u003c` so that no
//! `</script>` or `<!--` can end or bend that element. The page's script puts them in the document
//! only as text nodes, never as markup. A Content-Security-Policy forbids every fetch.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("report.css");
/// Shared by both pages, placed before the page's own script.
const COMMON_SCRIPT: &str = include_str!("common.js");
const SCRIPT: &str = include_str!("report.js");
const SWEEP_SCRIPT: &str = include_str!("sweep.js");
const COMPARE_SCRIPT: &str = include_str!("compare.js");

/// Why a page could not be made or written. Every variant that comes from a file names it.
#[derive(Debug)]
pub enum HtmlError {
    /// The input is not a pacer report; `why` says what is wrong with it.
    NotAReport { path: Option<PathBuf>, why: String },
    /// The saved report could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The page could not be written.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for HtmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtmlError::NotAReport { path: Some(p), why } => {
                write!(f, "{} is not a pacer report: {why}", p.display())
            }
            HtmlError::NotAReport { path: None, why } => write!(f, "not a pacer report: {why}"),
            HtmlError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            HtmlError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for HtmlError {}

/// The page for one report. Fails only when `report` is not a pacer report (an object with a
/// `config` object and a numeric `total_requests`); any other field may be missing or unknown.
pub fn render(report: &Value) -> Result<String, HtmlError> {
    check(report).map_err(|why| HtmlError::NotAReport {
        path: None,
        why: why.into(),
    })?;
    let sweep = is_sweep(report);
    let compared = is_compare(report);
    let what = if sweep {
        "pacer sweep"
    } else if compared {
        "pacer compare"
    } else {
        "pacer report"
    };
    let url = report["config"]["url"]
        .as_str()
        .or_else(|| report["new"]["config"]["url"].as_str())
        .unwrap_or("");
    let title = if url.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {url}")
    };
    let script = if sweep {
        SWEEP_SCRIPT
    } else if compared {
        COMPARE_SCRIPT
    } else {
        SCRIPT
    };
    let data = script_json(report);
    let mut out = String::with_capacity(
        TEMPLATE.len() + STYLE.len() + COMMON_SCRIPT.len() + script.len() + data.len(),
    );
    fill(TEMPLATE, &mut out, |name, out| match name {
        "title" => escape_text(&title, out),
        "version" => out.push_str(env!("CARGO_PKG_VERSION")),
        "style" => out.push_str(STYLE),
        "script" => {
            // The timing families in their reading order (`crate::metric`), for the scripts.
            out.push_str("const PacerMetrics = ");
            out.push_str(&script_json(&crate::metric::to_json()));
            out.push_str(";\n");
            out.push_str(COMMON_SCRIPT);
            out.push_str(script);
        }
        "data" => out.push_str(&data),
        // The template is ours and a unit test renders it; an unknown name is a bug there.
        other => unreachable!("page.html names an unknown slot {other:?}"),
    });
    Ok(out)
}

/// Renders `report` into the file `path` (for `--html FILE` on a run).
/// The page goes to a temporary file beside `path`, renamed over it once whole: `path` is never
/// left empty or half-written.
pub fn write(report: &Value, path: &Path) -> Result<(), HtmlError> {
    let page = render(report)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    let temp = path.with_file_name(format!(".{name}.pacer-{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, page).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(|source| HtmlError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Where `pacer html REPORT` writes without `-o`: beside the report, `run.json` → `run.html`
/// (`run` → `run.html`). None when that would be the report itself.
pub fn default_output(input: &Path) -> Option<PathBuf> {
    let out = input.with_extension("html");
    (out != input).then_some(out)
}

/// Renders a saved JSON report (`pacer html REPORT.json [-o FILE]`).
pub fn render_file(input: &Path, output: &Path) -> Result<(), HtmlError> {
    let text = std::fs::read(input).map_err(|source| HtmlError::Read {
        path: input.to_path_buf(),
        source,
    })?;
    let not_report = |why: String| HtmlError::NotAReport {
        path: Some(input.to_path_buf()),
        why,
    };
    let report: Value =
        serde_json::from_slice(&text).map_err(|e| not_report(format!("not JSON ({e})")))?;
    check(&report).map_err(|why| not_report(why.into()))?;
    write(&report, output)
}

/// A sweep's JSON (`pacer sweep --json`, `POST /sweep`), not one run's report.
fn is_sweep(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("sweep")
}

/// A comparison's JSON (`pacer compare --json`): both runs' figures and curves.
fn is_compare(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("compare")
}

/// What makes JSON a pacer report (or sweep, or comparison), or why it is not one.
fn check(report: &Value) -> Result<(), &'static str> {
    let Some(m) = report.as_object() else {
        return Err("the JSON is not an object (pacer bench --json writes one)");
    };
    if is_sweep(report) {
        if !m.get("table").is_some_and(Value::is_array) {
            return Err("it is a sweep without a \"table\" list (pacer sweep --json writes one)");
        }
        if !m.get("config").is_some_and(Value::is_object) {
            return Err(
                "it is a sweep without a \"config\" object (pacer sweep --json writes one)",
            );
        }
        return Ok(());
    }
    if is_compare(report) {
        if !m.get("figures").is_some_and(Value::is_array) {
            return Err(
                "it is a comparison without a \"figures\" list (pacer compare --json writes one)",
            );
        }
        return Ok(());
    }
    if !m.get("total_requests").is_some_and(Value::is_number) {
        return Err("it has no numeric \"total_requests\" field (pacer bench --json writes one)");
    }
    if !m.get("config").is_some_and(Value::is_object) {
        return Err("it has no \"config\" object (pacer bench --json writes one)");
    }
    Ok(())
}

/// The report as JSON that can sit inside a `<script>` element. In script data only `<` can
/// start something the HTML parser acts on (`</script>` ends the element, `<!--` followed by
/// `<script` makes a later `</script>` not end it), and in JSON `<` can only occur inside a
/// string, where `\u003c` means the same character to `JSON.parse`.
fn script_json(report: &Value) -> String {
    report.to_string().replace('<', "\\u003c")
}

/// HTML-escapes text for an element's content or a quoted attribute.
fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Copies `template` into `out`, replacing each `{{name}}` with what `slot` writes. One pass, so
/// text a slot writes (a report's URL may contain `{{data}}`) is never looked at again.
fn fill(template: &str, out: &mut String, mut slot: impl FnMut(&str, &mut String)) {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                slot(&after[..end], out);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"config": {"url": "http://127.0.0.1:8081/", "qps": 10}, "total_requests": 0})
    }

    fn blob(page: &str) -> &str {
        let open = "<script type=\"application/json\" id=\"report-data\">";
        let start = page.find(open).expect("data element") + open.len();
        let len = page[start..].find("</script>").expect("data element ends");
        &page[start..start + len]
    }

    #[test]
    fn every_slot_is_filled_and_the_assets_cannot_end_their_elements() {
        let page = render(&minimal()).unwrap();
        assert!(!page.contains("{{"), "a slot was left in the page");
        assert!(page.starts_with("<!DOCTYPE html>"));
        for (name, asset) in [
            ("common.js", COMMON_SCRIPT),
            ("report.js", SCRIPT),
            ("sweep.js", SWEEP_SCRIPT),
            ("compare.js", COMPARE_SCRIPT),
            ("report.css", STYLE),
        ] {
            let lower = asset.to_ascii_lowercase();
            for bad in ["</script", "</style", "<!--", "<script"] {
                assert!(!lower.contains(bad), "{name} contains {bad}");
            }
        }
        // Our own script and CSS sit in the page verbatim.
        assert!(page.contains(SCRIPT) && page.contains(STYLE));
        assert!(page.contains(&format!("pacer {}", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn the_page_fetches_nothing() {
        let page = render(&minimal()).unwrap();
        let lower = page.to_ascii_lowercase();
        for needle in [
            "src=",
            "href=",
            "url(",
            "@import",
            "https://",
            "fetch(",
            "xmlhttprequest",
        ] {
            assert!(!lower.contains(needle), "the page contains {needle:?}");
        }
        assert!(page.contains("default-src 'none'"));
    }

    #[test]
    fn report_strings_cannot_escape_the_data_element_and_read_back_unchanged() {
        let hostile = "</script><script>alert(1)</script><!--<script>{{data}}&\"'";
        let mut r = minimal();
        r["config"]["url"] = json!(format!("http://x/{hostile}"));
        r["error_counts"] = json!({ hostile: 3, "</SCRIPT >": 1 });
        let page = render(&r).unwrap();
        let data = blob(&page);
        assert!(!data.contains('<'), "{data}");
        let back: Value = serde_json::from_str(data).unwrap();
        assert_eq!(back, r);
        // Exactly our three script elements, the data one and the two of the page.
        assert_eq!(page.matches("<script").count(), 3);
        let title_start = page.find("<title>").unwrap();
        let title = &page[title_start..title_start + page[title_start..].find("</title>").unwrap()];
        assert_eq!(
            title,
            "<title>pacer report: http://x/&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;\
             &lt;!--&lt;script&gt;{{data}}&amp;&quot;&#39;"
        );
    }

    #[test]
    fn anything_but_a_report_is_refused_with_the_reason() {
        let cases = [
            (json!([1, 2]), "not an object"),
            (json!({"config": {}}), "total_requests"),
            (
                json!({"total_requests": "5", "config": {}}),
                "total_requests",
            ),
            (json!({"total_requests": 5}), "\"config\" object"),
            (
                json!({"total_requests": 5, "config": "x"}),
                "\"config\" object",
            ),
        ];
        for (v, want) in cases {
            let e = render(&v).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("not a pacer report: "), "{msg}");
            assert!(msg.contains(want), "{msg} should say {want}");
        }
        assert!(render(&json!({"total_requests": 0, "config": {}})).is_ok());
        // A sweep is drawn by its own script, and needs its table.
        let page =
            render(&json!({"kind": "sweep", "config": {"url": "http://h/"}, "table": []})).unwrap();
        assert!(page.contains(SWEEP_SCRIPT) && !page.contains(SCRIPT));
        assert!(page.contains("<title>pacer sweep: http://h/</title>"));
        let e = render(&json!({"kind": "sweep", "config": {}})).unwrap_err();
        assert!(e.to_string().contains("\"table\""), "{e}");
        // So is a comparison, which needs its figures.
        let page = render(&json!({"kind": "compare", "figures": []})).unwrap();
        assert!(page.contains(COMPARE_SCRIPT) && !page.contains(SCRIPT));
        assert!(page.contains("<title>pacer compare</title>"));
        let e = render(&json!({"kind": "compare"})).unwrap_err();
        assert!(e.to_string().contains("\"figures\""), "{e}");
    }

    #[test]
    fn fill_replaces_each_slot_once_in_one_pass() {
        let mut out = String::new();
        fill("a{{x}}b{{y}}c{{", &mut out, |n, o| {
            o.push_str(if n == "x" { "{{y}}" } else { "Y" })
        });
        assert_eq!(out, "a{{y}}bYc{{");
    }
}
