//! `--data-dir`: the one directory whose files a request may name (`dataset`, `tokenizer`).
//!
//! A request's path is relative to the directory; an absolute one is taken only if it lies inside
//! it. The path is resolved with every symbolic link followed (`canonicalize`) and must end inside
//! the directory, at a regular file. Everything else (`..` out of it, a link out of it, a missing
//! file, a directory, a pipe, a device) is refused naming the path as the request gave it, and a
//! path outside gets the same words whether or not something is there, so an answer never tells
//! what lies outside the directory. Without a data directory the API names no files at all.
//!
//! This module only says which file; reading and parsing it are the plan's
//! ([`crate::plan::workload`]), which also bounds what its errors quote of a file's text. The CLI
//! never comes here: its files are its user's own. A hard link inside the directory to a file
//! elsewhere cannot be told from a file of its own: what the directory holds is the operator's
//! choice.

use std::io;
use std::path::{Path, PathBuf};

/// A data directory, resolved once when the server starts.
#[derive(Clone, Debug)]
pub struct DataDir {
    /// Canonical: every path a request names is compared with this one after resolving.
    root: PathBuf,
}

/// Why a named path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, unreadable, or resolving to somewhere outside the directory: one answer for all
    /// of them, so the refusal says nothing of what lies outside.
    NotInside,
    /// Inside, but a directory, a pipe, a socket or a device.
    NotAFile,
}

impl DataDir {
    /// Resolves `dir`, which must exist and be a directory.
    pub fn open(dir: &Path) -> io::Result<DataDir> {
        let fail =
            |e: io::Error| io::Error::new(e.kind(), format!("--data-dir {}: {e}", dir.display()));
        let root = dir.canonicalize().map_err(fail)?;
        if !root.metadata().map_err(fail)?.is_dir() {
            return Err(fail(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        Ok(DataDir { root })
    }

    /// The directory, resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `body` (an answer about to be sent) with this directory's own path taken out of every
    /// path inside it, which is then quoted relative to it as a request names it: errors and
    /// reports name the files a run read (`dataset`, `tokenizer`, `ca_cert`) by their resolved
    /// path, and where the server keeps its data is no client's business. The one place this
    /// is done, for every answer.
    pub fn hide(&self, body: Vec<u8>) -> Vec<u8> {
        let raw = format!("{}/", self.root.display());
        // As JSON writes it (a path may hold a quote or a backslash).
        let quoted = serde_json::to_string(&raw).unwrap_or_default();
        let escaped = quoted.trim_matches('"');
        let mut out = body;
        for pattern in [escaped, raw.as_str()] {
            out = remove_all(&out, pattern.as_bytes());
        }
        out
    }

    /// The file `given` names, resolved: what the plan then reads.
    pub fn resolve(&self, given: &Path) -> Result<PathBuf, Refusal> {
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.root.join(given)
        };
        let real = joined.canonicalize().map_err(|_| Refusal::NotInside)?;
        if !real.starts_with(&self.root) {
            return Err(Refusal::NotInside);
        }
        match real.metadata() {
            Ok(m) if m.is_file() => Ok(real),
            Ok(_) => Err(Refusal::NotAFile),
            Err(_) => Err(Refusal::NotInside),
        }
    }
}

/// `bytes` without any occurrence of `pattern` (non-empty).
fn remove_all(bytes: &[u8], pattern: &[u8]) -> Vec<u8> {
    if pattern.is_empty() || bytes.len() < pattern.len() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(pattern) {
            i += pattern.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("pacer-datadir-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn only_regular_files_inside_the_directory_resolve() {
        let s = Scratch::new("unit");
        let data = s.0.join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("d.jsonl"), "{}").unwrap();
        std::fs::write(data.join("sub/t.json"), "{}").unwrap();
        std::fs::write(s.0.join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(s.0.join("secret"), data.join("out")).unwrap();
        std::os::unix::fs::symlink(data.join("d.jsonl"), data.join("in")).unwrap();
        std::os::unix::fs::symlink("..", data.join("up")).unwrap();

        let dir = DataDir::open(&data).unwrap();
        let root = dir.root().to_path_buf();
        let ok = |p: &str| dir.resolve(Path::new(p));
        assert_eq!(ok("d.jsonl"), Ok(root.join("d.jsonl")));
        assert_eq!(ok("./sub/../d.jsonl"), Ok(root.join("d.jsonl")));
        assert_eq!(ok("sub/t.json"), Ok(root.join("sub/t.json")));
        assert_eq!(
            ok("in"),
            Ok(root.join("d.jsonl")),
            "a link that stays inside"
        );
        let abs = root.join("sub/t.json");
        assert_eq!(ok(abs.to_str().unwrap()), Ok(abs.clone()));

        for outside in [
            "../secret",
            "out",
            "up/secret",
            "missing.jsonl",
            "/etc/passwd",
        ] {
            assert_eq!(ok(outside), Err(Refusal::NotInside), "{outside}");
        }
        let secret = s.0.join("secret");
        assert_eq!(ok(secret.to_str().unwrap()), Err(Refusal::NotInside));
        for not_file in ["", ".", "sub", "sub/.."] {
            assert_eq!(ok(not_file), Err(Refusal::NotAFile), "{not_file:?}");
        }

        let e = DataDir::open(&s.0.join("secret")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let e = DataDir::open(&s.0.join("nope")).unwrap_err();
        assert!(e.to_string().starts_with("--data-dir "), "{e}");
    }

    #[test]
    fn answers_quote_paths_relative_to_the_directory() {
        let s = Scratch::new("hide");
        let dir = DataDir::open(&s.0).unwrap();
        let root = dir.root().display().to_string();
        let body = format!(
            r#"{{"detail":"dataset {root}/sub/d.jsonl: line 3","tokenizer":"{root}/t.json","other":"{root}x"}}"#
        );
        let hidden = String::from_utf8(dir.hide(body.into_bytes())).unwrap();
        assert_eq!(
            hidden,
            format!(
                r#"{{"detail":"dataset sub/d.jsonl: line 3","tokenizer":"t.json","other":"{root}x"}}"#
            )
        );
        assert!(!hidden.contains(&format!("{root}/")));
    }
}
