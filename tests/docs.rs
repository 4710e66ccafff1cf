//! The documentation against the code, so that neither drifts: every flag of every command
//! (clap's own definitions) is in docs/cli.md and every flag there exists; every route and
//! request field of the OpenAPI document is in docs/api.md, and every field of its request
//! tables exists; every timing family and report field is in docs/report.md; every `pacer`
//! command line in README.md and docs/ parses; and the README's five examples run against the
//! mock, with the reports they promise.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{CommandFactory, Parser};
use pacer::cli::Cli;
use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// README.md and every docs/*.md, with their paths.
fn markdown() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(
        docs.iter()
            .map(|p| format!("docs/{}", p.file_name().unwrap().to_string_lossy())),
    );
    files
        .into_iter()
        .map(|f| (read(&f), f))
        .map(|(t, f)| (f, t))
        .collect()
}

/// Every flag of one command: its long name, long aliases (hidden ones too: they work) and
/// short names.
struct Flag {
    command: String,
    long: Option<String>,
    aliases: Vec<String>,
    shorts: Vec<char>,
    hidden: bool,
}

fn flags() -> Vec<Flag> {
    let cli = Cli::command();
    let mut out = Vec::new();
    for sub in cli.get_subcommands() {
        for arg in sub.get_arguments() {
            if arg.is_positional() || matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            // Hidden flags (`--force-progress`, for the benches) are not the user's; they still
            // count as existing when a page names them.
            let hidden = arg.is_hide_set();
            let mut shorts: Vec<char> = arg.get_short().into_iter().collect();
            shorts.extend(arg.get_visible_short_aliases().unwrap_or_default());
            out.push(Flag {
                command: sub.get_name().to_string(),
                long: arg.get_long().map(str::to_string),
                aliases: arg
                    .get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                shorts,
                hidden,
            });
        }
    }
    assert!(out.len() > 50, "only {} flags found", out.len());
    out
}

/// The `--long` flags a line names (a `--` then a lowercase name), and the `-x` short ones it
/// names between backticks (`` `-q` ``), so that prose dashes are not flags.
fn flag_tokens(line: &str) -> (Vec<String>, Vec<char>) {
    let b = line.as_bytes();
    let mut longs = Vec::new();
    let mut i = 0;
    while let Some(k) = line[i..].find("--") {
        let at = i + k;
        let start = at + 2;
        let mut end = start;
        while end < b.len()
            && (b[end].is_ascii_lowercase()
                || b[end].is_ascii_digit()
                || b[end] == b'-'
                || b[end] == b'_')
        {
            end += 1;
        }
        let before_ok = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'-');
        if before_ok && end > start && b[start].is_ascii_lowercase() {
            longs.push(line[start..end].trim_end_matches('-').to_string());
        }
        i = end.max(at + 2);
    }
    let mut shorts = Vec::new();
    for part in line.split('`').skip(1).step_by(2) {
        let p = part.trim();
        let mut c = p.chars();
        if let (Some('-'), Some(s), None) = (c.next(), c.next(), c.next())
            && s.is_ascii_alphabetic()
        {
            shorts.push(s);
        }
    }
    (longs, shorts)
}

#[test]
fn flag_tokens_are_read_from_a_line() {
    let (l, s) =
        flag_tokens("| `-c`, `--num-workers N` | x --max_tokens, a-b, --3 -- `-z` `-d 5` |");
    assert_eq!(l, ["num-workers", "max_tokens"]);
    assert_eq!(s, ['c', 'z']);
}

#[test]
fn every_flag_is_in_docs_cli_md_and_every_flag_there_exists() {
    let doc = read("docs/cli.md");
    let lines: Vec<(Vec<String>, Vec<char>)> = doc.lines().map(flag_tokens).collect();
    let documented: BTreeSet<&String> = lines.iter().flat_map(|(l, _)| l).collect();
    let mut missing = Vec::new();
    let mut known: BTreeSet<String> = ["help", "version"].map(String::from).into();
    let mut known_shorts: BTreeSet<char> = ['h', 'V'].into();
    for f in flags() {
        known.extend(f.long.iter().cloned());
        known.extend(f.aliases.iter().cloned());
        known_shorts.extend(&f.shorts);
        if f.hidden {
            continue;
        }
        let Some(long) = &f.long else {
            missing.push(format!("{}: a flag without a long name", f.command));
            continue;
        };
        if !documented.contains(long) {
            missing.push(format!("{} --{long}", f.command));
        }
        // A short name is documented on a line with its long one (a table row).
        for s in &f.shorts {
            if !lines
                .iter()
                .any(|(l, sh)| l.contains(long) && sh.contains(s))
            {
                missing.push(format!("{} -{s} (on a line with --{long})", f.command));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from docs/cli.md:\n{}",
        missing.join("\n")
    );
    let unknown: Vec<String> = lines
        .iter()
        .flat_map(|(l, s)| {
            l.iter()
                .filter(|x| !known.contains(*x))
                .map(|x| format!("--{x}"))
                .chain(
                    s.iter()
                        .filter(|c| !known_shorts.contains(*c))
                        .map(|c| format!("-{c}")),
                )
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/cli.md names flags pacer does not have: {unknown:?}"
    );
}

/// `pacer openapi` prints the document `GET /openapi.json` serves.
#[test]
fn pacer_openapi_prints_the_document() {
    let o = pacer(&["openapi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = json_of(&o);
    assert_eq!(printed, pacer::api::openapi::document());
    assert_eq!(printed["openapi"], "3.0.3");
}

#[test]
fn every_route_and_request_field_is_in_docs_api_md() {
    let doc = read("docs/api.md");
    let d = pacer::api::openapi::document();
    let mut missing = Vec::new();
    let paths = d["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{paths:?}");
    for (path, ops) in paths {
        let methods = ops.as_object().unwrap().keys();
        for method in
            methods.filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
        {
            let route = format!("`{} {path}`", method.to_uppercase());
            if !doc.contains(&route) {
                missing.push(route);
            }
        }
    }
    let schemas = &d["components"]["schemas"];
    let mut fields = BTreeSet::new();
    for name in ["BenchmarkRequest", "FireworksRequest", "SweepRequest"] {
        let props = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no properties"));
        for field in props.keys() {
            fields.insert(field.clone());
            if !doc.contains(&format!("`{field}`")) {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing from docs/api.md: {missing:?}");
    // Every field of a request table (a table with a `type` column) exists.
    let mut unknown = Vec::new();
    let mut in_request_table = false;
    for line in doc.lines() {
        if !line.starts_with('|') {
            in_request_table = false;
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.get(1) == Some(&"field") {
            in_request_table = cells.get(2) == Some(&"type");
            continue;
        }
        if in_request_table && !cells[1].starts_with("---") {
            for name in cells[1].split('`').skip(1).step_by(2) {
                if !fields.contains(name) {
                    unknown.push(name.to_string());
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/api.md's request tables name fields the API does not take: {unknown:?}"
    );
}

#[test]
fn every_timing_family_and_report_field_is_in_docs_report_md() {
    let doc = read("docs/report.md");
    let mut missing = Vec::new();
    for t in pacer::metric::METRICS.iter() {
        if !doc.contains(&format!("`{}`", t.name)) {
            missing.push(t.name.to_string());
        }
    }
    let d = pacer::api::openapi::document();
    for name in ["BenchmarkReport", "FireworksReport"] {
        let props = d["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap();
        for field in props.keys() {
            // A family's statistics (`mean_X`, `X_p99`, ...) are documented once, as the family.
            let family = pacer::metric::METRICS
                .iter()
                .any(|t| field.contains(t.name));
            if !family && !doc.contains(&format!("`{field}`")) {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "missing from docs/report.md: {missing:?}"
    );
}

/// Splits one shell command line into words: single and double quotes, backslash escapes.
/// `$NAME` and `$(...)` become placeholder values.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            (_, '$') => {
                let mut name = String::new();
                if chars.peek() == Some(&'(') {
                    let mut depth = 0;
                    for n in chars.by_ref() {
                        depth += match n {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        if depth == 0 {
                            break;
                        }
                    }
                    name.push_str("(command)");
                } else {
                    while let Some(&n) = chars.peek() {
                        if n.is_ascii_alphanumeric() || n == '_' {
                            name.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                word.push_str(match name.as_str() {
                    "START" => "2030-01-01T00:00:00Z",
                    "i" => "0",
                    _ => "x",
                });
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn shell_words_split_as_a_shell_does() {
    assert_eq!(
        shell_words(
            r#"pacer bench -H 'A: b' --body "{\"x\": 1}" --start-at $START --state shard-$i.json"#
        ),
        [
            "pacer",
            "bench",
            "-H",
            "A: b",
            "--body",
            r#"{"x": 1}"#,
            "--start-at",
            "2030-01-01T00:00:00Z",
            "--state",
            "shard-0.json"
        ]
    );
}

/// The `pacer` command lines of the ```sh blocks of a markdown text, each with its line number:
/// continuation lines joined, `# comments`, a trailing `&` and a leading `$ ` dropped, and the
/// commands after a `|`, `;` or `&&` found too. `cargo run --release --` counts as `pacer`.
fn commands(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_sh = matches!(line.trim(), "```sh" | "```bash" | "```shell");
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((n + 1, String::new()));
        // Drop a `# comment`: a # after whitespace, outside quotes.
        let mut code = String::new();
        let (mut q, mut prev) = (None::<char>, ' ');
        for c in line.chars() {
            match (q, c) {
                (None, '#') if prev.is_whitespace() => break,
                (None, '\'' | '"') => q = Some(c),
                (Some(x), c) if c == x => q = None,
                _ => {}
            }
            code.push(c);
            prev = c;
        }
        let code = code.trim_end();
        if let Some(cont) = code.strip_suffix('\\') {
            joined.push_str(cont);
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(code);
        for part in joined
            .split(" | ")
            .flat_map(|p| p.split("; "))
            .flat_map(|p| p.split(" && "))
        {
            let part = part
                .trim()
                .trim_start_matches("$ ")
                .trim_end_matches('&')
                .trim();
            let part = part.strip_prefix("do ").unwrap_or(part);
            let rest = if let Some(r) = part.strip_prefix("cargo run --release -- ") {
                Some(r)
            } else {
                part.strip_prefix("pacer ")
            };
            if let Some(rest) = rest {
                let mut words = vec!["pacer".to_string()];
                words.extend(shell_words(rest));
                out.push((start, words));
            }
        }
    }
    out
}

#[test]
fn every_pacer_command_in_the_docs_parses() {
    let mut bad = Vec::new();
    let mut count = 0;
    for (file, text) in markdown() {
        for (line, words) in commands(&text) {
            count += 1;
            if let Err(e) = Cli::try_parse_from(&words) {
                let first = e.to_string().lines().next().unwrap_or("").to_string();
                bad.push(format!("{file}:{line}: {}: {first}", words.join(" ")));
            }
        }
    }
    assert!(count >= 20, "only {count} pacer commands found in the docs");
    assert!(
        bad.is_empty(),
        "commands that do not parse:\n{}",
        bad.join("\n")
    );
}

/// The README's five examples: the ```sh block under its "## Five commands" heading.
fn readme_examples() -> Vec<Vec<String>> {
    let readme = read("README.md");
    let at = readme
        .find("\n## Five commands")
        .expect("README.md has a \"## Five commands\" section");
    let section = &readme[at..];
    let block_start = section.find("```sh").expect("a ```sh block");
    let block_end = block_start + 5 + section[block_start + 5..].find("```").unwrap();
    commands(&section[..block_end + 3])
        .into_iter()
        .map(|(_, w)| w)
        .collect()
}

#[test]
fn the_readme_examples_run_against_the_mock() {
    let examples = readme_examples();
    assert_eq!(examples.len(), 5, "{examples:?}");
    // The README's target is `pacer mock --port 8081 --all-200`; here the same on a free port.
    let target = mock(MockConfig {
        error_rate: 0.0,
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 10,
        ..MockConfig::default()
    });
    let addr = target.addr().to_string();
    let dir = TempDir::new("readme");
    let runs: Vec<_> = examples
        .iter()
        .map(|words| {
            let mut args: Vec<String> = words[1..]
                .iter()
                .map(|w| w.replace("127.0.0.1:8081", &addr))
                .collect();
            assert!(
                args.iter().any(|a| a.contains(&addr)),
                "a README example that does not target the mock at 127.0.0.1:8081: {words:?}"
            );
            if !args.iter().any(|a| a == "--json" || a == "-j") {
                args.push("--json".into());
            }
            let child = Process::new(env!("CARGO_BIN_EXE_pacer"))
                .args(&args)
                .current_dir(&dir.0)
                .env_remove("FIREWORKS_API_KEY")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (words.join(" "), child)
        })
        .collect();
    for (cmd, child) in runs {
        let o = child.wait_with_output().unwrap();
        // 3 is a threshold that did not hold: the run itself worked (a loaded machine's p99).
        let code = o.status.code();
        assert!(
            matches!(code, Some(0 | 3)),
            "{cmd}: exit {code:?}\n{}",
            stderr(&o)
        );
        let r = json_of(&o);
        check_example(&cmd, &r, &dir);
    }
}

/// What each README example promises, on its JSON.
fn check_example(cmd: &str, r: &Value, dir: &TempDir) {
    let n = |k: &str| {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("{cmd}: {k} = {}", r[k]))
    };
    if cmd.contains("sweep") {
        // --rates 100,200,400: no probe, one row per rate, in order.
        let asked: Vec<f64> = r["table"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["asked_qps"].as_f64().unwrap())
            .collect();
        assert_eq!(asked, [100.0, 200.0, 400.0], "{cmd}: {r}");
    } else if cmd.contains("--stages") {
        // 50/s for 5 s, then 50 → 200/s over 10 s: 250 + 1,250.
        assert_eq!(n("total_requests"), 1500, "{cmd}");
        assert_eq!(r["stages"].as_array().unwrap().len(), 2, "{cmd}");
        assert_eq!(r["thresholds"].as_array().unwrap().len(), 1, "{cmd}");
    } else if cmd.contains("llm") {
        assert_eq!(n("total_requests"), 50, "{cmd}");
        assert_eq!(n("successes"), 50, "{cmd}");
        assert_eq!(n("output_tokens"), 500, "{cmd}");
        let html = std::fs::read_to_string(dir.path("run.html")).unwrap();
        assert!(html.contains("<html"), "{cmd}");
    } else if cmd.contains("max") {
        assert!(n("total_requests") > 0 && n("errors") == 0, "{cmd}: {r}");
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path("max.json")).unwrap()).unwrap();
        assert_eq!(saved["total_requests"], r["total_requests"], "{cmd}");
    } else {
        assert_eq!(n("total_requests"), 1000, "{cmd}");
        assert_eq!(n("successes"), 1000, "{cmd}");
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown text's headings (not of `#` lines inside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            code = !code;
        } else if !code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_between_the_docs_lands() {
    assert_eq!(anchor("## `POST /sweep` request"), "post-sweep-request");
    assert_eq!(
        anchor("Every request on disk (`--requests`)"),
        "every-request-on-disk---requests"
    );
    let pages = markdown();
    let mut dead = Vec::new();
    let mut links = 0;
    for (file, text) in &pages {
        let dir = Path::new(file).parent().unwrap();
        for piece in text.split("](").skip(1) {
            let Some(end) = piece.find(')') else { continue };
            let link = &piece[..end];
            if link.contains("://") || link.contains(' ') {
                continue;
            }
            links += 1;
            let (path, frag) = link.split_once('#').unwrap_or((link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                // docs/../README.md → README.md
                let joined = dir.join(path);
                let mut parts: Vec<&str> = Vec::new();
                for c in joined.iter().map(|c| c.to_str().unwrap()) {
                    match c {
                        ".." => {
                            parts.pop();
                        }
                        "." => {}
                        c => parts.push(c),
                    }
                }
                parts.join("/")
            };
            if !root().join(&target).exists() {
                dead.push(format!("{file}: ({link}): no file {target}"));
                continue;
            }
            if !frag.is_empty() {
                let text = pages
                    .iter()
                    .find(|(f, _)| *f == target)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                if !anchors(&text).contains(frag) {
                    dead.push(format!("{file}: ({link}): no heading #{frag} in {target}"));
                }
            }
        }
    }
    assert!(links > 30, "only {links} links found");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}
