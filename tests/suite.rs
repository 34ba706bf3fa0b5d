//! Silt's integration tests, one binary with a module per area: decoders
//! over producers' fixtures, the local pipeline end to end, faults, hostile
//! input, fuzz regressions, monitoring, the HTML report, properties, the
//! AWS functions against moto (`aws`), the store contract, incremental
//! models, golden Athena SQL, engine routing, the read-back by pyarrow
//! and DuckDB, and the producers' own messages (`real`). `cargo test -p silt-tests --test suite <module>::` runs one.

mod aws;
mod decoders;
mod fault_matrix;
mod fuzz_regressions;
mod golden;
mod hostile;
mod incremental;
mod monitor;
mod pipeline;
mod property;
mod readback;
mod real;
mod report_html;
mod routing;
mod store_contract;
