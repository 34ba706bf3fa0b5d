//! Observing the pipeline: monitor checks, SLO burn rates, cost estimates
//! and their CloudWatch EMF form.

pub mod cost;
pub mod emf;
pub mod monitor;
pub mod slo;
