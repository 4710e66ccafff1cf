//! A compact, versioned byte form of a [`Recorder`], so statistics recorded by processes on other
//! machines merge exactly as if one process had recorded them: for any recorders `a` and `b`,
//! `unpack(pack(a))` merged with `unpack(pack(b))` has the same summary, histogram and packed form
//! as `a` merged with `b`, bit for bit.
//!
//! What is kept is what decides a recorder's future: while exact, its samples in recording order
//! (numpy's pairwise sums depend on the order, so the mean does too); once sketched, the running
//! mean and squared deviations, the histogram, and the sketch's compactors with its coin-flip
//! state. An exact recorder's histogram is not stored: it is the histogram of its samples.
//!
//! Timings are differences of `Instant`s, read as `Duration::as_secs_f64`, so nearly every one is
//! a whole number of nanoseconds turned into seconds. Such a value is stored as that number of
//! nanoseconds in a LEB128 varint (a 2 ms timing takes 3 bytes instead of 8); any other value
//! (a per-token average, a server's figure) as its 8 raw bytes behind an escape byte. The sorted
//! levels of a sketch store each value's distance from the one before, which is small. Measured
//! (`packed_sizes` below): 100,000 exact samples between 0.5 and 20 ms pack to about 390 KB (520 KB
//! in base64), against 8 bytes a sample raw and about 20 as JSON numbers.
//!
//! Layout, version 1, all integers LEB128 unless said:
//!
//! ```text
//! u8 version (1)   u8 mode (0 exact, 1 sketch)   n
//! exact:   n values, plain
//! sketch:  mean (f64 LE)  m2 (f64 LE)  rng state (u64 LE)
//!          buckets: k, then k × (bucket index, count), indices ascending
//!          min (f64 LE)  max (f64 LE)
//!          levels: L, then per level: its length, then its values (level 0 plain, others by
//!          difference)
//! value, plain:         ns + 1                  | 0, f64 LE
//! value, by difference: zigzag(ns − prev) + 1   | 0, f64 LE      (prev: the last ns value, from 0)
//! ```
//!
//! Reading never trusts the bytes: every length is checked against what is left, every value
//! must be a finite non-negative number, counts must agree, and the error names what is wrong.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::histogram::{BUCKETS, Histogram};
use super::sketch::{MAX_LEVELS, Sketch};
use super::{EXACT_LIMIT, Recorder};

/// The layout this module writes, and the newest it reads.
pub const PACK_VERSION: u8 = 1;

const MODE_EXACT: u8 = 0;
const MODE_SKETCH: u8 = 1;
/// The varint that says "8 raw bytes follow".
const ESCAPE: u64 = 0;
/// Values from 0 up to this many nanoseconds (about 31 years) may be stored as nanoseconds; the
/// bound keeps differences well inside an i64.
const MAX_NS: u64 = 1_000_000_000 * 1_000_000_000;

/// Why bytes are not a packed recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackError {
    /// Not base64.
    Base64,
    /// The bytes end before the recorder does.
    Truncated,
    /// Bytes are left after the recorder.
    Trailing,
    /// Written by a newer pacer, in a layout this one does not know.
    NewerVersion(u8),
    /// Neither exact nor sketch.
    Mode(u8),
    /// A varint longer than 64 bits.
    Varint,
    /// A value that no timing can be: negative, infinite or not a number.
    NotATiming,
    /// Counts that do not agree, or a recorder that is neither within the exact limit nor past it.
    Inconsistent(&'static str),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Base64 => f.write_str("timing data is not base64"),
            PackError::Truncated => f.write_str("timing data ends too early"),
            PackError::Trailing => f.write_str("timing data has bytes after its end"),
            PackError::NewerVersion(v) => write!(
                f,
                "timing data is in layout {v}; this pacer reads up to {PACK_VERSION} (use a newer pacer)"
            ),
            PackError::Mode(m) => write!(f, "timing data has an unknown mode {m}"),
            PackError::Varint => f.write_str("timing data has a number longer than 64 bits"),
            PackError::NotATiming => {
                f.write_str("timing data holds a value that is not a finite non-negative number")
            }
            PackError::Inconsistent(why) => write!(f, "timing data is inconsistent: {why}"),
        }
    }
}

impl std::error::Error for PackError {}

/// The packed bytes of `r` (see the module docs for the layout).
pub fn pack(r: &Recorder) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + r.samples.len() * 4);
    out.push(PACK_VERSION);
    match &r.sketch {
        None => {
            out.push(MODE_EXACT);
            put_varint(&mut out, r.n);
            for &x in &r.samples {
                put_plain(&mut out, x);
            }
        }
        Some(s) => {
            out.push(MODE_SKETCH);
            put_varint(&mut out, r.n);
            out.extend_from_slice(&r.mean.to_le_bytes());
            out.extend_from_slice(&r.m2.to_le_bytes());
            let (levels, rng) = s.parts();
            out.extend_from_slice(&rng.to_le_bytes());
            let counts = r.hist.counts();
            put_varint(&mut out, counts.iter().filter(|&&c| c > 0).count() as u64);
            for (i, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                put_varint(&mut out, i as u64);
                put_varint(&mut out, c);
            }
            // A sketched recorder has samples, so both are finite.
            out.extend_from_slice(&r.hist.min().unwrap_or(0.0).to_le_bytes());
            out.extend_from_slice(&r.hist.max().unwrap_or(0.0).to_le_bytes());
            put_varint(&mut out, levels.len() as u64);
            for (h, items) in levels.iter().enumerate() {
                put_varint(&mut out, items.len() as u64);
                if h == 0 {
                    items.iter().for_each(|&x| put_plain(&mut out, x));
                } else {
                    let mut prev = 0;
                    items.iter().for_each(|&x| put_diff(&mut out, x, &mut prev));
                }
            }
        }
    }
    out
}

/// [`pack`], as standard base64 (for JSON).
pub fn pack_base64(r: &Recorder) -> String {
    STANDARD.encode(pack(r))
}

/// The recorder [`pack`] wrote, checked.
pub fn unpack(bytes: &[u8]) -> Result<Recorder, PackError> {
    let mut rd = Reader { bytes, pos: 0 };
    let version = rd.byte()?;
    if version > PACK_VERSION {
        return Err(PackError::NewerVersion(version));
    }
    if version == 0 {
        return Err(PackError::Inconsistent("layout 0 does not exist"));
    }
    let mode = rd.byte()?;
    let n = rd.varint()?;
    let r = match mode {
        MODE_EXACT => {
            if n > EXACT_LIMIT as u64 {
                return Err(PackError::Inconsistent(
                    "an exact recorder holds more samples than the exact limit",
                ));
            }
            let mut r = Recorder::new();
            r.samples.reserve(rd.cap_for(n));
            for _ in 0..n {
                let x = rd.plain()?;
                r.record(x);
            }
            r
        }
        MODE_SKETCH => {
            if n <= EXACT_LIMIT as u64 {
                return Err(PackError::Inconsistent(
                    "a sketched recorder holds no more samples than the exact limit",
                ));
            }
            let mean = rd.f64()?;
            let m2 = rd.f64()?;
            if !mean.is_finite() || !m2.is_finite() {
                return Err(PackError::NotATiming);
            }
            let rng = rd.u64()?;
            let hist = rd.histogram(n)?;
            let (lo, hi) = (hist.min().unwrap_or(0.0), hist.max().unwrap_or(0.0));
            let levels = rd.varint()?;
            if levels == 0 || levels > MAX_LEVELS as u64 {
                return Err(PackError::Inconsistent("a sketch has 1 to 48 levels"));
            }
            let mut items = Vec::with_capacity(levels as usize);
            for h in 0..levels {
                let len = rd.varint()?;
                let mut level = Vec::with_capacity(rd.cap_for(len));
                let mut prev = 0;
                for _ in 0..len {
                    let x = if h == 0 {
                        rd.plain()?
                    } else {
                        rd.diff(&mut prev)?
                    };
                    if x < lo || x > hi {
                        return Err(PackError::Inconsistent(
                            "a sketch item lies outside the histogram's min and max",
                        ));
                    }
                    level.push(x);
                }
                items.push(level);
            }
            let sketch = Sketch::from_parts(items, rng).map_err(PackError::Inconsistent)?;
            if sketch.count() != n {
                return Err(PackError::Inconsistent(
                    "the sketch's weights do not add up to the count",
                ));
            }
            Recorder {
                samples: Vec::new(),
                sketch: Some(Box::new(sketch)),
                n,
                mean,
                m2,
                hist,
            }
        }
        m => return Err(PackError::Mode(m)),
    };
    if rd.pos != bytes.len() {
        return Err(PackError::Trailing);
    }
    Ok(r)
}

/// [`unpack`] from [`pack_base64`]'s text.
pub fn unpack_base64(text: &str) -> Result<Recorder, PackError> {
    let bytes = STANDARD.decode(text).map_err(|_| PackError::Base64)?;
    unpack(&bytes)
}

/// The whole number of nanoseconds `x` was made from by `Duration::as_secs_f64`, if it was.
fn as_ns(x: f64) -> Option<u64> {
    if !(0.0..1e9).contains(&x) {
        return None;
    }
    // x·1e9 is within a unit of the integer; try it and its neighbours.
    let guess = (x * 1e9).round() as u64;
    [guess, guess.saturating_sub(1), guess + 1]
        .into_iter()
        .find(|&ns| ns <= MAX_NS && from_ns(ns).to_bits() == x.to_bits())
}

fn from_ns(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64()
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_raw(out: &mut Vec<u8>, x: f64) {
    put_varint(out, ESCAPE);
    out.extend_from_slice(&x.to_le_bytes());
}

pub(crate) fn put_plain(out: &mut Vec<u8>, x: f64) {
    match as_ns(x) {
        Some(ns) => put_varint(out, ns + 1),
        None => put_raw(out, x),
    }
}

fn put_diff(out: &mut Vec<u8>, x: f64, prev: &mut u64) {
    match as_ns(x) {
        Some(ns) => {
            // Both are at most MAX_NS < 2^60, so neither the difference nor its zigzag overflows.
            let d = ns as i64 - *prev as i64;
            put_varint(out, ((d << 1) ^ (d >> 63)) as u64 + 1);
            *prev = ns;
        }
        None => put_raw(out, x),
    }
}

/// Reads what the `put_` functions wrote, checking every length and value (also used by the
/// packed timeline of a run's statistics, `crate::engine::packed`).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn byte(&mut self) -> Result<u8, PackError> {
        let b = *self.bytes.get(self.pos).ok_or(PackError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take8(&mut self) -> Result<[u8; 8], PackError> {
        let end = self.pos.checked_add(8).ok_or(PackError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(PackError::Truncated)?;
        self.pos = end;
        let mut a = [0; 8];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, PackError> {
        Ok(u64::from_le_bytes(self.take8()?))
    }

    fn f64(&mut self) -> Result<f64, PackError> {
        Ok(f64::from_le_bytes(self.take8()?))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, PackError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(PackError::Varint);
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(PackError::Varint)
    }

    /// A capacity to reserve for `n` items, no more than the bytes left could hold (each item
    /// takes at least one), so a lying length cannot make a huge allocation.
    pub(crate) fn cap_for(&self, n: u64) -> usize {
        n.min((self.bytes.len() - self.pos) as u64) as usize
    }

    fn timing(x: f64) -> Result<f64, PackError> {
        if x.is_finite() && x.is_sign_positive() {
            Ok(x)
        } else {
            Err(PackError::NotATiming)
        }
    }

    fn within(ns: u64) -> Result<u64, PackError> {
        if ns > MAX_NS {
            return Err(PackError::Inconsistent(
                "a value in nanoseconds is past the largest",
            ));
        }
        Ok(ns)
    }

    pub(crate) fn plain(&mut self) -> Result<f64, PackError> {
        match self.varint()? {
            ESCAPE => Self::timing(self.f64()?),
            v => Ok(from_ns(Self::within(v - 1)?)),
        }
    }

    fn diff(&mut self, prev: &mut u64) -> Result<f64, PackError> {
        match self.varint()? {
            ESCAPE => Self::timing(self.f64()?),
            v => {
                let z = v - 1;
                let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
                let ns = (*prev as i64)
                    .checked_add(d)
                    .filter(|&ns| ns >= 0)
                    .ok_or(PackError::Inconsistent("a difference leads below zero"))?;
                let ns = Self::within(ns as u64)?;
                *prev = ns;
                Ok(from_ns(ns))
            }
        }
    }

    /// The sparse bucket counts and the extremes of a sketched recorder of `n` samples.
    fn histogram(&mut self, n: u64) -> Result<Histogram, PackError> {
        let k = self.varint()?;
        if k > BUCKETS as u64 {
            return Err(PackError::Inconsistent("more histogram buckets than exist"));
        }
        let mut counts = [0u64; BUCKETS];
        let mut next = 0;
        let mut total: u64 = 0;
        for _ in 0..k {
            let i = self.varint()?;
            if i < next || i >= BUCKETS as u64 {
                return Err(PackError::Inconsistent(
                    "histogram buckets out of order or out of range",
                ));
            }
            let c = self.varint()?;
            counts[i as usize] = c;
            total = total
                .checked_add(c)
                .ok_or(PackError::Inconsistent("histogram counts overflow"))?;
            next = i + 1;
        }
        if total != n {
            return Err(PackError::Inconsistent(
                "the histogram's counts do not add up to the count",
            ));
        }
        let min = Self::timing(self.f64()?)?;
        let max = Self::timing(self.f64()?)?;
        if min > max {
            return Err(PackError::Inconsistent(
                "the histogram's min is above its max",
            ));
        }
        Ok(Histogram::from_parts(counts, min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Timings as the engine makes them: whole nanoseconds read as seconds, between `lo` and `hi`
    /// seconds, with a few per-token averages (not whole nanoseconds) mixed in when `odd`.
    fn timings(seed: u64, n: usize, lo: f64, hi: f64, odd: bool) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|i| {
                let ns = ((lo + rng.next_f64() * (hi - lo)) * 1e9) as u64;
                let x = Duration::from_nanos(ns).as_secs_f64();
                if odd && i % 7 == 0 { x / 3.0 } else { x }
            })
            .collect()
    }

    fn recorder(xs: &[f64]) -> Recorder {
        let mut r = Recorder::new();
        xs.iter().for_each(|&x| r.record(x));
        r
    }

    fn round_trip(r: &Recorder) -> Recorder {
        unpack_base64(&pack_base64(r)).expect("unpacks")
    }

    fn merged(mut a: Recorder, b: Recorder) -> Recorder {
        a.merge(b);
        a
    }

    /// Same summary, histogram and packed bytes: nothing the report or a later merge reads differs.
    fn assert_same(a: &Recorder, b: &Recorder, what: &str) {
        assert_eq!(a.summary(), b.summary(), "{what}: summary");
        assert_eq!(a.histogram(), b.histogram(), "{what}: histogram");
        assert_eq!(pack(a), pack(b), "{what}: packed form");
    }

    #[test]
    fn merging_unpacked_recorders_equals_merging_the_originals() {
        // Sizes on both sides of the exact limit, alone and together.
        let sizes = [
            (0, 0),
            (0, 5),
            (1, 1),
            (2, 3),
            (1000, 2000),
            (60_000, 40_000),
            (60_000, 40_001),
            (EXACT_LIMIT + 1, 10),
            (10, 150_000),
            (120_000, 300_000),
        ];
        for (k, &(na, nb)) in sizes.iter().enumerate() {
            let a = recorder(&timings(k as u64, na, 0.0005, 0.02, k % 2 == 0));
            let b = recorder(&timings(100 + k as u64, nb, 0.001, 3.5, k % 3 == 0));
            let want = merged(a.clone(), b.clone());
            let got = merged(round_trip(&a), round_trip(&b));
            assert_same(&got, &want, &format!("{na}+{nb}"));
            assert_same(&round_trip(&a), &a, &format!("{na} alone"));
            // And the merged result goes on merging alike.
            let c = recorder(&timings(7, 50_000, 0.0001, 0.01, true));
            assert_same(
                &merged(round_trip(&got), round_trip(&c)),
                &merged(want, c),
                &format!("{na}+{nb} then more"),
            );
        }
    }

    #[test]
    fn values_that_are_not_whole_nanoseconds_survive() {
        let xs = [
            0.0,
            1e-300,
            5e-324,
            0.1 / 3.0,
            1.5e9,
            1e300,
            f64::MAX,
            0.000_000_001,
            999_999_999.999_999_9,
        ];
        let r = recorder(&xs);
        let back = round_trip(&r);
        assert_eq!(back.samples.len(), xs.len());
        for (a, b) in back.samples.iter().zip(&xs) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_same(&back, &r, "odd values");
    }

    #[test]
    fn bad_bytes_are_named_errors_never_panics() {
        let mut big = recorder(&timings(3, EXACT_LIMIT + 5000, 0.001, 0.1, true));
        big.merge(recorder(&timings(4, 3, 0.001, 0.1, false)));
        for r in [recorder(&timings(1, 300, 0.001, 0.1, true)), big] {
            let bytes = pack(&r);
            // Every truncation fails (sampled past the first few hundred for speed).
            for cut in (0..bytes.len()).filter(|c| *c < 512 || c % 97 == 0) {
                assert!(unpack(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(unpack(&longer).unwrap_err(), PackError::Trailing);
            // Flipped bytes: an error or a recorder, never a panic.
            let mut rng = SplitMix64::new(9);
            for _ in 0..2000 {
                let mut b = bytes.clone();
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
                let _ = unpack(&b);
            }
        }
        assert_eq!(unpack(&[2, 0, 0]).unwrap_err(), PackError::NewerVersion(2));
        assert_eq!(unpack(&[1, 7, 0]).unwrap_err(), PackError::Mode(7));
        assert_eq!(unpack(&[]).unwrap_err(), PackError::Truncated);
        // A negative or NaN raw value.
        let mut b = vec![1, MODE_EXACT, 1, 0];
        b.extend_from_slice(&(-1.0f64).to_le_bytes());
        assert_eq!(unpack(&b).unwrap_err(), PackError::NotATiming);
        let mut b = vec![1, MODE_EXACT, 1, 0];
        b.extend_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(unpack(&b).unwrap_err(), PackError::NotATiming);
        // A count far past the bytes: refused without reserving for it.
        let mut b = vec![1, MODE_EXACT];
        put_varint(&mut b, 90_000);
        assert_eq!(unpack(&b).unwrap_err(), PackError::Truncated);
        let mut b = vec![1, MODE_EXACT];
        put_varint(&mut b, EXACT_LIMIT as u64 + 1);
        assert!(matches!(unpack(&b), Err(PackError::Inconsistent(_))));
        assert_eq!(unpack_base64("not base64!").unwrap_err(), PackError::Base64);
        // An 11-byte varint.
        assert_eq!(
            unpack(&[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .unwrap_err(),
            PackError::Varint
        );
    }

    #[test]
    fn nanosecond_values_are_recognized() {
        for ns in [
            0u64,
            1,
            999,
            1_000_000,
            999_999_999,
            1_000_000_000,
            12_345_678_901_234,
        ] {
            assert_eq!(as_ns(from_ns(ns)), Some(ns), "{ns}");
        }
        assert_eq!(as_ns(0.1 / 3.0), None);
        assert_eq!(as_ns(-1.0), None);
        assert_eq!(as_ns(f64::NAN), None);
    }

    /// The sizes quoted in the module docs, and a ceiling that keeps them true.
    #[test]
    fn packed_sizes() {
        let exact = recorder(&timings(11, EXACT_LIMIT, 0.0005, 0.02, false));
        let sketch = recorder(&timings(12, 1_000_000, 0.0005, 0.02, false));
        let (e, s) = (pack(&exact).len(), pack(&sketch).len());
        let (e64, s64) = (pack_base64(&exact).len(), pack_base64(&sketch).len());
        println!(
            "100k exact: {e} bytes ({e64} base64); 1M sketched ({} items): {s} bytes ({s64} base64)",
            sketch.sketch_retained()
        );
        assert!(e <= 4 * EXACT_LIMIT, "{e}");
        assert!(s64 < 200_000, "{s64}");
    }
}
