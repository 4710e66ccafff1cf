//! Which part of a plan this process sends: shard `i` of `N` (`--shard i/N`, or `env/N` with `i`
//! from `JOB_COMPLETION_INDEX` as Kubernetes sets it in an Indexed Job). Shard `i` sends the
//! requests `j` of the whole plan with `j mod N == i`. A setting of the plan, so the plan and the
//! engine read it here; `crate::shard` (states, the merge) builds on it.

use std::fmt;

/// The environment variable Kubernetes sets to a pod's index in an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `index` of `count`, written `index/count`; always `index < count <= MAX_SHARDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardIndex {
    index: u32,
    count: u32,
}

impl ShardIndex {
    /// The whole run in one process.
    pub const WHOLE: ShardIndex = ShardIndex { index: 0, count: 1 };

    /// Shard `index` of `count`, if `index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Option<ShardIndex> {
        (index < count && count <= MAX_SHARDS).then_some(ShardIndex { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Reads `i/N`, or `env/N` with `i` from [`INDEX_ENV`] through `env` (which is
    /// `std::env::var` outside tests). `0 <= i < N <= MAX_SHARDS`.
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<ShardIndex, String> {
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not i/N (such as 0/4) or env/N"))?;
        let count: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .ok_or_else(|| {
                format!("shard {s:?}: N must be a whole number from 1 to {MAX_SHARDS}")
            })?;
        let (text, from_env) = if i.trim() == "env" {
            let v = env(INDEX_ENV).ok_or_else(|| {
                format!(
                    "shard {s:?} reads the index from {INDEX_ENV}, which is not set (Kubernetes \
                     sets it in the pods of an Indexed Job)"
                )
            })?;
            (v, true)
        } else {
            (i.to_string(), false)
        };
        let index: u32 = text.trim().parse().map_err(|_| {
            let from = if from_env {
                format!(" ({INDEX_ENV}={text:?})")
            } else {
                String::new()
            };
            format!("shard {s:?}: the index{from} is not a whole number")
        })?;
        if index >= count {
            return Err(format!(
                "shard {s:?}: the index {index} must be below N = {count} (shards are 0 to {})",
                count - 1
            ));
        }
        Ok(ShardIndex { index, count })
    }

    /// Whether global request `j` is this shard's.
    pub fn owns(self, j: u64) -> bool {
        j % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the requests `0..total` are this shard's.
    pub fn share_of(self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(i < total % n)
    }
}

impl fmt::Display for ShardIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl serde::Serialize for ShardIndex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ShardIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // A state names its index; `env/N` has no meaning there.
        ShardIndex::parse(&s, |_| None).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(index: Option<&str>) -> impl Fn(&str) -> Option<String> {
        let index = index.map(String::from);
        move |name| (name == INDEX_ENV).then(|| index.clone()).flatten()
    }

    #[test]
    fn shard_indices_parse_and_split_the_requests() {
        let none = env_with(None);
        assert_eq!(
            ShardIndex::parse("2/7", &none),
            Ok(ShardIndex::new(2, 7).unwrap())
        );
        assert_eq!(ShardIndex::parse(" 0/1 ", &none), Ok(ShardIndex::WHOLE));
        assert_eq!(
            ShardIndex::parse("env/4", env_with(Some("3"))),
            Ok(ShardIndex::new(3, 4).unwrap())
        );
        for (bad, says) in [
            ("7/7", "must be below N = 7"),
            ("1/0", "N must be a whole number"),
            ("x/3", "is not a whole number"),
            ("3", "is not i/N"),
            ("-1/3", "is not a whole number"),
            ("1/100001", "N must be"),
        ] {
            let e = ShardIndex::parse(bad, &none).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = ShardIndex::parse("env/4", &none).unwrap_err();
        assert!(
            e.contains("JOB_COMPLETION_INDEX") && e.contains("not set"),
            "{e}"
        );
        let e = ShardIndex::parse("env/4", env_with(Some("4"))).unwrap_err();
        assert!(e.contains("below N = 4"), "{e}");
        let e = ShardIndex::parse("env/4", env_with(Some("two"))).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX=\"two\""), "{e}");

        // Every request belongs to exactly one shard, and the shares add up.
        for n in [1u32, 2, 3, 7] {
            for total in [0u64, 1, 6, 7, 100, 1001] {
                let shards: Vec<_> = (0..n).filter_map(|i| ShardIndex::new(i, n)).collect();
                for j in 0..total {
                    assert_eq!(shards.iter().filter(|s| s.owns(j)).count(), 1);
                }
                let shares: u64 = shards.iter().map(|s| s.share_of(total)).sum();
                assert_eq!(shares, total);
                for s in &shards {
                    assert_eq!(
                        s.share_of(total),
                        (0..total).filter(|&j| s.owns(j)).count() as u64
                    );
                }
            }
        }
        let json = serde_json::to_string(&ShardIndex::new(1, 3).unwrap()).unwrap();
        assert_eq!(json, "\"1/3\"");
        assert!(serde_json::from_str::<ShardIndex>("\"env/3\"").is_err());
    }
}
