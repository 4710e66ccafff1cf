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
