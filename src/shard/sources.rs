//! Where `pacer merge` finds states: files (a `--state FILE`, or a saved log holding several
//! state lines), directories (every `*.json` in them), and `-`, standard input read as lines (so
//! `kubectl logs ... | pacer merge -` works). Then the merge, in two passes so that memory stays
//! flat however many shards and requests there are: every state is read and checked first with
//! its timings dropped; then, in shard order, each file is read again and folded in, one at a
//! time. States that came several to a source (standard input, a log) are kept from the first
//! pass, since they cannot be read again.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::merge::{Fold, MergeError, Merged, check};
use super::state::{ShardState, StateError};
use super::timeline::align;
use crate::engine::{RunStats, Timeline, Timings};

/// Why `pacer merge` could not merge.
#[derive(Debug)]
pub enum LoadError {
    State(StateError),
    Merge(MergeError),
    /// A directory could not be listed, or held no `*.json`.
    Dir {
        path: PathBuf,
        why: String,
    },
    /// A file changed between the check and the fold.
    Changed {
        path: PathBuf,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::State(e) => e.fmt(f),
            LoadError::Merge(e) => e.fmt(f),
            LoadError::Dir { path, why } => write!(f, "{}: {why}", path.display()),
            LoadError::Changed { path } => {
                write!(f, "{} changed while it was being merged", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl From<StateError> for LoadError {
    fn from(e: StateError) -> LoadError {
        LoadError::State(e)
    }
}

impl From<MergeError> for LoadError {
    fn from(e: MergeError) -> LoadError {
        LoadError::Merge(e)
    }
}

/// A state after the first pass: kept whole, or to be read again from its file.
enum Held {
    Whole(Box<ShardState>),
    File(PathBuf),
}

/// Reads every state `args` name (files, directories, `-` for `stdin`) and merges them. A state
/// (a line, or a file of one) longer than `max_state_bytes` is refused by name.
pub fn merge_sources(
    args: &[PathBuf],
    stdin: impl BufRead,
    max_state_bytes: u64,
) -> Result<Merged, LoadError> {
    let mut files = Vec::new();
    let mut stdin = Some(stdin);
    let mut held: Vec<(String, ShardState, Held)> = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            // A second `-` finds standard input already read to its end.
            let Some(input) = stdin.take() else { continue };
            for (source, mut s) in ShardState::read_lines(input, "stdin", max_state_bytes)? {
                held.push((source, header(&mut s), Held::Whole(Box::new(s))));
            }
        } else if arg.is_dir() {
            files.extend(json_files(arg)?);
        } else {
            files.push(arg.clone());
        }
    }
    for path in files {
        let mut states = ShardState::read_file(&path, max_state_bytes)?;
        if states.len() == 1 {
            let (source, mut s) = states.remove(0);
            lighten(&mut s.stats);
            held.push((source, s, Held::File(path)));
        } else {
            for (source, mut s) in states {
                held.push((source, header(&mut s), Held::Whole(Box::new(s))));
            }
        }
    }
    let headers: Vec<(String, ShardState)> = held
        .iter()
        .map(|(source, h, _)| (source.clone(), h.clone()))
        .collect();
    check(&headers)?;
    let mut alignment = Some(align(&headers));
    drop(headers);
    held.sort_by_key(|(_, h, _)| h.shard);
    let mut fold: Option<Fold> = None;
    for (source, h, state) in held {
        let s = match state {
            Held::Whole(s) => *s,
            Held::File(path) => {
                let mut again = ShardState::read_file(&path, max_state_bytes)?;
                match (again.len(), again.pop()) {
                    (1, Some((_, mut s))) => {
                        if header(&mut s).to_line() != h.to_line() {
                            return Err(LoadError::Changed { path });
                        }
                        s
                    }
                    _ => return Err(LoadError::Changed { path }),
                }
            }
        };
        let fold = fold
            .get_or_insert_with(|| Fold::new(&s, alignment.take().unwrap_or_else(|| align(&[]))));
        fold.add(&source, s)?;
    }
    fold.map(Fold::finish)
        .ok_or(LoadError::Merge(MergeError::NoStates))
}

/// A copy of a state without its timing families (its stages' too) and its timeline's intervals
/// (what the check and the alignment read, a few hundred bytes), made without copying them.
fn header(s: &mut ShardState) -> ShardState {
    let timings = std::mem::take(&mut s.stats.timings);
    let stages: Vec<_> = s
        .stats
        .stages
        .iter_mut()
        .map(|st| std::mem::take(&mut st.timings))
        .collect();
    let light = outline(&s.stats.timeline);
    let timeline = std::mem::replace(&mut s.stats.timeline, light);
    let h = s.clone();
    s.stats.timings = timings;
    for (st, t) in s.stats.stages.iter_mut().zip(stages) {
        st.timings = t;
    }
    s.stats.timeline = timeline;
    h
}

/// Drops what grows with the run from `stats`: the timing families (the stages' too) and the
/// timeline's intervals.
fn lighten(stats: &mut RunStats) {
    stats.timings = Timings::default();
    stats.stages.iter_mut().for_each(lighten);
    stats.timeline = outline(&stats.timeline);
}

/// A timeline's interval and last moment, without its intervals (off if it was).
fn outline(t: &Timeline) -> Timeline {
    if t.is_on() {
        Timeline::rebuilt(t.interval(), Vec::new(), t.last_ns())
    } else {
        Timeline::default()
    }
}

/// The `*.json` files of a directory, by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Dir {
        path: dir.to_path_buf(),
        why: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    if files.is_empty() {
        return Err(LoadError::Dir {
            path: dir.to_path_buf(),
            why: "no *.json state files in this directory".into(),
        });
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::merge::merge;
    use crate::shard::merge::tests::state;
    use crate::stats::pack::pack;

    const MAX: u64 = crate::plan::defaults::MAX_STATE_BYTES;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pacer-sources-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn same(a: &Merged, b: &Merged) {
        let (x, y) = (&a.stats, &b.stats);
        assert_eq!(
            (x.total_requests, x.successes, x.sent, x.bytes_received),
            (y.total_requests, y.successes, y.sent, y.bytes_received)
        );
        assert_eq!(x.errors, y.errors);
        assert_eq!(a.per_shard, b.per_shard);
        for ((m, r), (_, theirs)) in x.timings.iter().zip(y.timings.iter()) {
            assert_eq!(pack(r), pack(theirs), "{}", m.name);
        }
    }

    #[test]
    fn files_directories_and_stdin_merge_as_the_states_do() {
        let states: Vec<_> = (0..5).map(|i| state(i, 5, 3000 + i as usize, 0)).collect();
        let want = merge(
            states
                .iter()
                .map(|s| (s.shard.to_string(), s.clone()))
                .collect(),
        )
        .unwrap();
        let dir = tempdir("mix");
        let shards = dir.join("shards");
        std::fs::create_dir_all(&shards).unwrap();
        // Shards 0 and 3 in a directory (with a file that is not JSON), 1 alone, 2 and 4 on
        // standard input among log noise.
        for i in [0, 3] {
            std::fs::write(shards.join(format!("s{i}.json")), states[i].to_line()).unwrap();
        }
        std::fs::write(shards.join("notes.txt"), "not a state").unwrap();
        let one = dir.join("one.json");
        std::fs::write(&one, states[1].to_line() + "\n").unwrap();
        let log = format!(
            "report\n{}\nmore report\n[pod/x] {}\n",
            states[4].to_line(),
            states[2].to_line()
        );
        let args = [shards.clone(), PathBuf::from("-"), one.clone()];
        let got = merge_sources(&args, log.as_bytes(), MAX).unwrap();
        same(&got, &want);

        // The same states, every one from standard input.
        let all: String = states.iter().rev().map(|s| s.to_line() + "\n").collect();
        same(
            &merge_sources(&[PathBuf::from("-")], all.as_bytes(), MAX).unwrap(),
            &want,
        );

        // A shard given twice, once as a file and once on standard input, is named.
        let e = merge_sources(&[one.clone(), PathBuf::from("-")], log.as_bytes(), MAX)
            .err()
            .unwrap();
        assert!(e.to_string().contains("missing: 0/5, 3/5"), "{e}");
        let e = merge_sources(&[one.clone(), one.clone()], &b""[..], MAX)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains(&format!(
                "shard 1/5 appears 2 times ({0}, {0})",
                one.display()
            )),
            "{e}"
        );
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = merge_sources(&[empty], &b""[..], MAX).err().unwrap();
        assert!(e.to_string().contains("no *.json state files"), "{e}");
        let e = merge_sources(&[dir.join("absent.json")], &b""[..], MAX)
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("cannot read"), "{e}");
        let e = merge_sources(&[PathBuf::from("-")], &b"nothing\n"[..], MAX)
            .err()
            .unwrap();
        assert!(e.to_string().contains("stdin holds no shard state"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
