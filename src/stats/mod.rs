//! STUB (replaced by the stats branch): signatures only, so the rest compiles.
#![allow(unused_variables, dead_code)]
pub const EXACT_LIMIT: usize = 100_000;
#[derive(Clone, Debug, Default)]
pub struct Recorder;
impl Recorder {
    pub fn new() -> Self {
        todo!()
    }
    pub fn record(&mut self, secs: f64) {
        todo!()
    }
    pub fn merge(&mut self, other: Recorder) {
        todo!()
    }
    pub fn count(&self) -> u64 {
        todo!()
    }
    pub fn summary(&self) -> Summary {
        todo!()
    }
    pub fn quantile(&self, q: f64) -> Option<f64> {
        todo!()
    }
    pub fn is_exact(&self) -> bool {
        todo!()
    }
}
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p97: Option<f64>,
    pub p99: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}
pub struct Histogram;
impl Histogram {
    pub fn compact(&self, rows: usize) -> Vec<(f64, f64, u64)> {
        todo!()
    }
}
impl Recorder {
    pub fn histogram(&self) -> Histogram {
        todo!()
    }
}
