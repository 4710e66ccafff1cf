//! The layer graph of `src/lib.rs`'s crate docs (section "Layers") holds: every `crate::` path in
//! `src/` (a `use` line or a path inline, test code included) names a module its module may use,
//! the graph names every module of the crate, and it has no circle. The graph lives in one place,
//! the crate docs; this test reads it from there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The ```text block after `//! ## Layers` in lib.rs: lines `module -> dep dep ...`, a module on
/// several lines allowed (the union counts). A line whose `// comment` says `removed by` holds
/// edges on their way out: imports may use them, but they are not part of the layers, so the
/// circle check leaves them out. Returns (every edge, the layers without those).
fn graph(lib: &str) -> (Graph, Graph) {
    let (mut g, mut layers) = (Graph::new(), Graph::new());
    let docs: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = docs
        .iter()
        .position(|l| l.trim() == "## Layers")
        .expect("lib.rs's crate docs have a \"## Layers\" section");
    let mut lines = docs[start..].iter().skip_while(|l| !l.starts_with("```"));
    lines.next().expect("the Layers section has a ``` block");
    for line in lines.take_while(|l| !l.starts_with("```")) {
        let (line, comment) = line.split_once("//").unwrap_or((line, ""));
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (module, deps) = line
            .split_once("->")
            .unwrap_or_else(|| panic!("layer line without \"->\": {line:?}"));
        let deps: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
        let module = module.trim().to_string();
        g.entry(module.clone()).or_default().extend(deps.clone());
        let kept = layers.entry(module).or_default();
        if !comment.contains("removed by") {
            kept.extend(deps);
        }
    }
    assert!(!g.is_empty(), "the Layers block is empty");
    (g, layers)
}

/// The crate's top-level modules, from `pub mod x;` / `mod x;` lines of lib.rs.
fn modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (None for lib.rs and main.rs).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(m) => Some(m.to_string()),
        None => Some(first),
    }
}

/// The modules a line of code names through `crate::`: `crate::x::...`, `crate::x`, and the
/// groups `crate::{x, y::z}`. Comment lines (`//`, `///`, `//!`) are not code.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // Not `$crate::` nor part of a longer name (`my_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c == '$' || c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            out.extend(
                inner
                    .split(',')
                    .map(|p| ident(p.trim()))
                    .filter(|m| !m.is_empty() && m != "self"),
            );
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.push(m);
            }
        }
    }
    out
}

#[test]
fn crate_paths_are_read_from_every_form() {
    assert_eq!(crate_paths("use crate::report::human;"), ["report"]);
    assert_eq!(
        crate_paths("    let x = crate::cli::no_response(p, crate::engine::X);"),
        ["cli", "engine"]
    );
    assert_eq!(
        crate_paths("use crate::{health::Health, slo, self};"),
        ["health", "slo"]
    );
    assert!(crate_paths("//! see [`crate::report::TIMINGS`]").is_empty());
    assert!(crate_paths("    /// [`crate::shard`]").is_empty());
    assert!(crate_paths("macro: $crate::x and my_crate::y").is_empty());
}

#[test]
fn the_graph_is_read_from_the_crate_docs() {
    let lib = "//! ```text\n//! x -> y\n//! ```\n//! ## Layers\n//!\n//! ```text\n//! a ->\n\
               //! b -> a  // why\n//! b -> c    // removed by other work\n//! ```\n";
    let (g, layers) = graph(lib);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(g["a"], set(&[]));
    assert_eq!(g["b"], set(&["a", "c"]));
    assert_eq!(layers["b"], set(&["a"]));
}

/// A circle in `g`, if any, as the modules along it.
fn circle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

#[test]
fn a_circle_is_found() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert_eq!(circle(&g), None);
}

#[test]
fn imports_follow_the_layer_graph() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let (g, layers) = graph(&lib);
    let mods = modules(&lib);
    let missing: Vec<&String> = mods.iter().filter(|m| !g.contains_key(*m)).collect();
    assert!(
        missing.is_empty(),
        "modules missing from lib.rs's layer graph: {missing:?}"
    );
    if let Some(c) = circle(&layers) {
        panic!("the layer graph has a circle: {}", c.join(" -> "));
    }

    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let allowed = &g[&module];
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for used in crate_paths(line) {
                seen += 1;
                if used != module && !allowed.contains(&used) {
                    let rel = file.strip_prefix(src().parent().unwrap()).unwrap();
                    wrong.push(format!(
                        "{}:{}: {module} -> {used}: {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    // The scan itself works: the crate has hundreds of crate:: paths.
    assert!(seen > 100, "only {seen} crate:: paths found in src/");
    assert!(
        wrong.is_empty(),
        "imports outside the layer graph of src/lib.rs (move the item down, or the edge is an \
         arrow up):\n{}",
        wrong.join("\n")
    );
}
