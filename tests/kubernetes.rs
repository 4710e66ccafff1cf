//! The Kubernetes manifests in `deploy/kubernetes/`: valid against the Kubernetes schemas (offline,
//! with `kubernetes-validate`, which ships them), shaped as the split run needs (an Indexed Job
//! whose completions, parallelism and `--shard env/N` agree), and their container command lines
//! run here as N local processes, with `JOB_COMPLETION_INDEX` set as Kubernetes sets it.
//!
//! Needs `python3` with `kubernetes-validate` (which brings PyYAML): `.ci/run` installs it; here a
//! missing one fails the test with the command that installs it, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const VALIDATOR: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the manifests promise to work with (`backoffLimitPerIndex` is 1.29's).
const OLDEST: &str = "1.29.0";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .expect("deploy/kubernetes exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
}

/// Fails the test, saying how to install the validator, when python3 cannot import it.
fn require_validator() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes_validate, yaml"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "kubernetes-validate is missing, so the manifests cannot be checked: run \
             `python3 -m pip install '{VALIDATOR}'` (.ci/run does): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("python3 is needed to validate the Kubernetes manifests: {e}"),
    }
}

fn validate(files: &[PathBuf], version: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    let out = cmd.args(files).output().expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every YAML document of a manifest, as JSON (PyYAML, which the validator brings).
fn load_yaml(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from PyYAML")
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    require_validator();
    let files = manifests();
    for version in [None, Some(OLDEST)] {
        let (ok, text) = validate(&files, version);
        println!("{text}");
        assert!(
            ok,
            "kubernetes-validate {version:?} refused a manifest:\n{text}"
        );
        // One "passed" line per resource of every file: nothing skipped.
        for file in &files {
            let resources = load_yaml(file);
            let name = file.display().to_string();
            let passed = text
                .lines()
                .filter(|l| l.contains(&name) && l.contains(" passed for resource "))
                .count();
            assert_eq!(passed, resources.len(), "{name}:\n{text}");
        }
    }
    // The validator does refuse a broken manifest, so its "passed" above means something.
    let dir = std::env::temp_dir().join(format!("pacer-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.yaml");
    let job = std::fs::read_to_string(manifests_dir().join("job.yaml")).unwrap();
    std::fs::write(
        &broken,
        job.replace("parallelism: 4", "parallelism: \"four\""),
    )
    .unwrap();
    let (ok, text) = validate(std::slice::from_ref(&broken), None);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!ok, "a string parallelism passed:\n{text}");
    assert!(text.contains("spec.parallelism"), "{text}");
}

/// The split run's Jobs: Indexed, every pod at once, no retries, and N said the same way three
/// times.
#[test]
fn shard_jobs_are_indexed_and_agree_on_n() {
    require_validator();
    let mut jobs = 0;
    for file in manifests() {
        for doc in load_yaml(&file) {
            if doc["kind"] != "Job" || doc["metadata"]["name"] != "pacer" {
                continue;
            }
            jobs += 1;
            let spec = &doc["spec"];
            let what = file.display();
            assert_eq!(spec["completionMode"], "Indexed", "{what}");
            assert_eq!(spec["completions"], spec["parallelism"], "{what}");
            assert_eq!(spec["backoffLimitPerIndex"], 0, "{what}");
            let n = spec["completions"].as_u64().unwrap();
            let container = &spec["template"]["spec"]["containers"][0];
            let args: Vec<&str> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let after = |flag: &str| {
                let i = args.iter().position(|a| *a == flag).unwrap_or_else(|| {
                    panic!("{what}: no {flag} in {args:?}");
                });
                args[i + 1]
            };
            assert_eq!(after("--shard"), format!("env/{n}"), "{what}");
            assert_eq!(after("--start-at"), "$(START)", "{what}");
            assert!(after("--state").starts_with(['-', '/']), "{what}");
            assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never", "{what}");
        }
    }
    assert_eq!(jobs, 2, "job.yaml and job-volume.yaml");
}

/// Kubernetes' `$(NAME)` substitution in a container's args: a defined variable is replaced, `$$`
/// is a literal `$`, anything else stays as written.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(close) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + close];
            match env.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..close + 3]),
            }
            rest = &tail[close + 3..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn kubernetes_substitution_is_imitated() {
    let env = vec![("A".to_string(), "1".to_string())];
    assert_eq!(expand("x$(A)y$(B)$$(A)$", &env), "x1y$(B)$(A)$");
}

/// The first container of the Job named `name` in `file`: its args and env, with the values a
/// user edits replaced by `edits`, and the `JOB_COMPLETION_INDEX` Kubernetes adds.
fn container(file: &str, name: &str) -> (Vec<String>, Vec<(String, String)>, Option<u64>) {
    let docs = load_yaml(&manifests_dir().join(file));
    let job = docs
        .iter()
        .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}: no Job {name}"));
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let args = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let env = c["env"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|v| {
                    (
                        v["name"].as_str().unwrap().to_string(),
                        v["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (args, env, job["spec"]["completions"].as_u64())
}

const PACER: &str = env!("CARGO_BIN_EXE_pacer");

/// The run a user would set in the manifest's env, small enough for a test.
fn edits(url: &str, start: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TARGET_URL", url.to_string()),
        ("QPS", "100".into()),
        ("DURATION", "2s".into()),
        ("WORKERS", "8".into()),
        ("START", start.to_string()),
    ]
}

/// The pods of an Indexed Job, as N local processes: the container's args after Kubernetes'
/// substitution, `JOB_COMPLETION_INDEX` set to each index, `mount` standing for the volume.
fn run_pods(file: &str, url: &str, mount: Option<&Path>) -> Vec<std::process::Output> {
    let (args, mut env, completions) = container(file, "pacer");
    let n = completions.expect("completions");
    let start =
        pacer::shard::time::format_rfc3339(pacer::shard::time::now_unix_ns() + 1_500_000_000);
    for (k, v) in edits(url, &start) {
        let slot = env.iter_mut().find(|(name, _)| name == k);
        slot.unwrap_or_else(|| panic!("{file} has no env {k}")).1 = v;
    }
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut env = env.clone();
            env.push(("JOB_COMPLETION_INDEX".into(), i.to_string()));
            let argv: Vec<String> = args
                .iter()
                .map(|a| expand(a, &env))
                .map(|a| match mount {
                    Some(m) => a.replace("/state", &m.display().to_string()),
                    None => a,
                })
                .collect();
            Command::new(PACER)
                .args(&argv)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("pacer starts")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = wait_bounded(c, std::time::Duration::from_secs(60));
            assert!(
                out.status.success(),
                "{file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        })
        .collect()
}

fn wait_bounded(
    mut child: std::process::Child,
    bound: std::time::Duration,
) -> std::process::Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("a pod's process did not end within {bound:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// job.yaml's pods, run here, print their states in their logs; `kubectl logs | pacer merge -`
/// is their stdouts, one after the other, into `pacer merge -`.
#[test]
fn the_log_manifest_runs_and_merges_from_logs() {
    require_validator();
    let mock = pacer::mock::MockServer::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        pacer::mock::MockConfig {
            error_rate: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let url = format!("{}/", mock.url());
    let pods = run_pods("job.yaml", &url, None);
    let logs: Vec<u8> = pods.iter().flat_map(|o| o.stdout.clone()).collect();
    let mut merge = Command::new(PACER)
        .args(["merge", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    merge.stdin.take().unwrap().write_all(&logs).unwrap();
    let out = wait_bounded(merge, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total_requests"], 200);
    assert_eq!(report["successes"], 200);
    assert_eq!(report["config"]["shards"], 4);
    assert_eq!(mock.counters().requests, 200);
}

/// job-volume.yaml's pods write their states to the volume; merge-volume.yaml's command merges
/// them there.
#[test]
fn the_volume_manifests_run_and_merge_on_the_volume() {
    require_validator();
    let mock = pacer::mock::MockServer::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        pacer::mock::MockConfig::default(),
    )
    .unwrap();
    let url = format!("{}/", mock.url());
    let volume = std::env::temp_dir().join(format!("pacer-k8s-volume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&volume);
    std::fs::create_dir_all(volume.join("shards")).unwrap();
    run_pods("job-volume.yaml", &url, Some(&volume));
    let (args, _, _) = container("merge-volume.yaml", "pacer-merge");
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.replace("/state", &volume.display().to_string()))
        .collect();
    let out = wait_bounded(
        Command::new(PACER)
            .args(&argv)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        std::time::Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(volume.join("report.json")).unwrap())
            .unwrap();
    let c = mock.counters();
    assert_eq!(report["total_requests"], 200);
    assert_eq!(report["successes"].as_u64(), Some(c.status_200));
    assert_eq!(
        report["error_counts"]["400"].as_u64().unwrap_or(0),
        c.status_400
    );
    let html = std::fs::read_to_string(volume.join("report.html")).unwrap();
    assert!(html.contains("<html"), "an HTML page");
    std::fs::remove_dir_all(&volume).unwrap();
}
