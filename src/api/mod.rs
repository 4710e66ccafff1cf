//! STUB (replaced by the api branch): signatures only, so the rest compiles.
#![allow(unused_variables, dead_code)]
use crate::plan::Limits;
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub addr: String,
    pub limits: Limits,
    pub max_runs: usize,
    pub api_key: Option<String>,
}
pub fn serve(cfg: ApiConfig) -> std::io::Result<()> {
    todo!()
}
