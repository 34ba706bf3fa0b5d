//! `silt`: runs Silt's ELT pipeline on one machine, whole or stage by stage.
//!
//! Exit codes: 0 success; 1 failure (config, I/O, a model or data test);
//! 2 bad usage; 3 some input was rejected (everything valid still landed).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use silt_core::models::backfill::{BackfillSpec, parse_window};
use silt_core::models::transform::{ModelStatus, RunRecord};
use silt_core::ports::SystemClock;
use silt_local::generate::{GenerateOptions, generate};
use silt_local::{IngestReport, LandReport, Local, Progress, TransformOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

// Decoding allocates many small values: in a perf profile of the benchmark about a
// fifth of all samples were glibc's malloc and free, so the binary uses mimalloc.
// Heap profilers (heaptrack) see only malloc: the `system-alloc` feature is for them.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code when some input was rejected but all valid input landed.
const EXIT_REJECTED: u8 = 3;
/// Rejections printed in full; the rest are counted.
const SHOW_REJECTIONS: usize = 20;

#[derive(Parser)]
#[command(
    name = "silt",
    version,
    about = "Serverless ELT for CDC events, run locally: ingest, land, transform, monitor."
)]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug).
    #[arg(long, global = true, default_value = "error", env = "SILT_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ProjectArgs {
    /// Project folder holding silt.toml and the models.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Warehouse folder (default: the config's landing.root inside the project).
    #[arg(long)]
    warehouse: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline: ingest, land, transform, monitor.
    Run {
        #[command(flatten)]
        p: ProjectArgs,
        /// Input files: JSON lines (one message each) or *.json documents such as SQS events.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Source the messages come from (default: the only one declared).
        #[arg(long)]
        source: Option<String>,
        /// Rebuild every model even if its inputs are unchanged.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Decode, validate and mask messages into the warehouse's landing queue.
    Ingest {
        #[command(flatten)]
        p: ProjectArgs,
        /// Input files.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Source the messages come from.
        #[arg(long)]
        source: Option<String>,
    },
    /// Land every batch waiting in the landing queue as Parquet.
    Land {
        #[command(flatten)]
        p: ProjectArgs,
    },
    /// Build models on DataFusion in dependency order.
    Transform {
        #[command(flatten)]
        p: ProjectArgs,
        /// Models to build: NAME, NAME+ (and downstream), +NAME (and upstream), tag:TAG.
        #[arg(long, num_args = 1..)]
        select: Vec<String>,
        /// Rebuild even if inputs are unchanged (incremental models in full).
        #[arg(long)]
        full_refresh: bool,
        /// Build models whose estimated scan is over their byte budget.
        #[arg(long)]
        force: bool,
    },
    /// Rebuild incremental models for a range of event dates, window by window;
    /// a failed backfill run again with the same arguments resumes at the failed window.
    Backfill {
        #[command(flatten)]
        p: ProjectArgs,
        /// First event date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Date after the last one, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Window length: days or weeks, like 1d or 2w.
        #[arg(long, default_value = "1d")]
        window: String,
        /// Most windows running at once.
        #[arg(long, default_value_t = 2)]
        max_concurrency: usize,
        /// Models to backfill (default: all); tables and views downstream run once at the end.
        #[arg(long, num_args = 1..)]
        select: Vec<String>,
        /// Start over instead of resuming a backfill with the same arguments.
        #[arg(long)]
        restart: bool,
        /// Build models whose estimated scan is over their byte budget.
        #[arg(long)]
        force: bool,
    },
    /// One monitor check: freshness, volumes, SLOs with burn rates, cost; print a table and write reports/latest.json.
    Monitor {
        #[command(flatten)]
        p: ProjectArgs,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the report as a self-contained HTML page (inline SVG charts) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Check the config, the models and their DAG.
    Validate {
        /// Project folder.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Compare the data contracts (`columns` in silt.toml) with what landed.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// Print the lineage from raw datasets through models, or export it.
    Lineage {
        /// Project folder.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LineageFormat::Text)]
        format: LineageFormat,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write realistic Debezium events for the example shop project.
    Generate {
        /// Number of events.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Seed: the same seed writes the same file.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Commit time of the first event: RFC 3339, or `now-3h` style; default 2026-01-01T00:00:00Z.
        #[arg(long)]
        start: Option<String>,
        /// Average milliseconds between events.
        #[arg(long, default_value_t = 500)]
        step_ms: i64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `silt contract` actions.
#[derive(Subcommand)]
enum ContractAction {
    /// Per dataset with declared columns, what its landed schema adds
    /// (`+`), types otherwise (`~`) or has not landed yet (`-`); exits 1
    /// when anything landed beyond the contract, so CI can block it.
    Diff {
        #[command(flatten)]
        p: ProjectArgs,
    },
}

/// Formats of `silt lineage`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LineageFormat {
    /// Indented text: each dataset, then what reads it.
    Text,
    /// `{"nodes": [...], "edges": [...]}`.
    Json,
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// The project's config and model DAG, read without a PII key and without
/// touching any warehouse (validate, lineage).
fn project_and_models(
    project: &Path,
) -> anyhow::Result<(
    silt_core::config::Project,
    silt_core::models::model::ModelGraph,
)> {
    let file = project.join("silt.toml");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let parsed = silt_core::config::Project::parse(&text, &file.display().to_string())?;
    let scratch = std::env::temp_dir().join(format!("silt-validate-{}", std::process::id()));
    let local = Local::new(
        parsed,
        project,
        Some(scratch.clone()),
        silt_core::ingest::mask::Masker::new(None),
        Arc::new(SystemClock),
    )?;
    let graph = local.load_models();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((local.project().clone(), graph?))
}

/// Where `silt run` writes the HTML report, inside the warehouse.
const REPORT_HTML: &str = "reports/latest.html";

async fn write_html(
    local: &Local,
    report: &silt_core::observe::monitor::Report,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let page = local.html(report).await?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "warn,silt={0},silt_core={0},silt_lake={0},silt_local={0}",
        cli.log
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // DataFusion reads every spilled run and raw file on a blocking thread:
    // with tokio's default of up to 512 such threads, a transform that
    // spilled more runs started more threads, each with its own allocator
    // heap, and peak memory grew with the input. A few per core keep the
    // disk busy.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).clamp(4, 16))
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run {
            p,
            input,
            source,
            full_refresh,
        } => {
            let local = open(&p)?;
            let progress = Bar::new(&input);
            let (ingest, land) = local
                .ingest_and_land(&input, source.as_deref(), &progress)
                .await?;
            progress.finish();
            print_ingest(&ingest);
            print_land(&land);
            let run = local.transform(&[], full_refresh).await?;
            print_transform(&run);
            let report = local.monitor().await?;
            println!();
            print!("{}", report.table());
            let html = local.warehouse().join(REPORT_HTML);
            write_html(&local, &report, &html).await?;
            println!(
                "report: {} and {}",
                local
                    .warehouse()
                    .join(silt_core::lake::keys::REPORT_KEY)
                    .display(),
                html.display()
            );
            outcome(Some(&ingest), Some(&run), local.warehouse())
        }
        Command::Ingest { p, input, source } => {
            let local = open(&p)?;
            let progress = Bar::new(&input);
            let ingest = local
                .ingest_to_folder(&input, source.as_deref(), &progress)
                .await?;
            progress.finish();
            print_ingest(&ingest);
            println!(
                "queued for landing under {}",
                local.warehouse().join(silt_local::QUEUE_PREFIX).display()
            );
            outcome(Some(&ingest), None, local.warehouse())
        }
        Command::Land { p } => {
            let local = open(&p)?;
            let land = local.land_pending().await?;
            print_land(&land);
            Ok(ExitCode::SUCCESS)
        }
        Command::Transform {
            p,
            select,
            full_refresh,
            force,
        } => {
            let local = open(&p)?;
            let options = TransformOptions {
                select,
                full_refresh,
                force,
            };
            let run = local
                .transform_with_options(&local.engine()?, &options)
                .await?;
            print_transform(&run);
            outcome(None, Some(&run), local.warehouse())
        }
        Command::Backfill {
            p,
            from,
            to,
            window,
            max_concurrency,
            select,
            restart,
            force,
        } => {
            let local = open(&p)?;
            let spec = BackfillSpec {
                from,
                to,
                window_days: parse_window(&window)?,
                max_concurrency,
                select,
            };
            let done = local
                .backfill_with(&local.engine()?, &spec, restart, force)
                .await?;
            let state = &done.state;
            if done.resumed_past > 0 {
                println!(
                    "backfill {}: resumed; {} window(s) were already done",
                    state.id, done.resumed_past
                );
            }
            for r in &done.runs {
                print_transform(r);
            }
            println!(
                "backfill {}: {} of {} window(s) done, at most {} at once",
                state.id,
                state.done(),
                state.windows.len(),
                done.peak_concurrency
            );
            if let Some(w) = state
                .windows
                .iter()
                .find(|w| w.status == silt_core::models::backfill::WindowStatus::Failed)
            {
                anyhow::bail!(
                    "backfill window {}..{} failed: {}\nrun the same command again to resume from it",
                    w.window.from,
                    w.window.to,
                    w.reason.as_deref().unwrap_or("")
                );
            }
            let failures: Vec<String> = done.runs.iter().flat_map(|r| r.failures()).collect();
            if !failures.is_empty() {
                anyhow::bail!("backfill failed:\n  {}", failures.join("\n  "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor { p, json, html } => {
            let local = open(&p)?;
            let report = local.monitor().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            if let Some(path) = html {
                write_html(&local, &report, &path).await?;
                if !json {
                    println!("html report: {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { project } => {
            let (p, graph) = project_and_models(&project)?;
            let p = &p;
            println!(
                "config ok: {} source(s), {} dataset(s)",
                p.sources.len(),
                p.datasets.len()
            );
            println!("models ok, in run order: {}", graph.order().join(" -> "));
            let check = silt_engine::contracts::check_models(p, &graph).await;
            for (model, why) in &check.skipped {
                println!("contracts: {model} not checked: {why}");
            }
            if !check.errors.is_empty() {
                let lines: Vec<String> = check
                    .errors
                    .iter()
                    .map(|(model, e)| format!("{model}: {e}"))
                    .collect();
                anyhow::bail!(
                    "models name what the declared columns do not have:\n  {}",
                    lines.join("\n  ")
                );
            }
            if !check.checked.is_empty() {
                println!(
                    "contracts ok: {} model(s) read only declared columns",
                    check.checked.len()
                );
            }
            if p.needs_pii_key() && std::env::var_os(&p.pii.key_env).is_none() {
                println!(
                    "note: set {} before ingesting: datasets hash PII with it",
                    p.pii.key_env
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Contract {
            action: ContractAction::Diff { p },
        } => {
            let local = open(&p)?;
            let project = local.project();
            let states = silt_lake::SchemaRegistry::new(local.store())
                .states(project.datasets.keys())
                .await?;
            let mut breaking = 0;
            for (id, d) in &project.datasets {
                if d.columns.is_empty() {
                    continue;
                }
                let declared: Vec<_> = d.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
                let empty = silt_core::lake::schema::DatasetSchema::empty(id.clone());
                let landed = states.schemas.get(id).unwrap_or(&empty);
                let diff = silt_core::lake::schema::contract_diff(&declared, landed);
                if diff.is_empty() {
                    println!("{id}: as declared (schema v{})", landed.version);
                    continue;
                }
                println!("{id}: schema v{}", landed.version);
                for d in &diff {
                    println!("  {d}");
                }
                breaking += diff.iter().filter(|d| d.breaks()).count();
            }
            Ok(if breaking > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Lineage {
            project,
            format,
            out,
        } => {
            let (p, graph) = project_and_models(&project)?;
            let datasets = p.datasets.keys().cloned().collect();
            let lineage = silt_core::models::lineage::Lineage::of(&graph, &datasets);
            let text = match format {
                LineageFormat::Text => lineage.to_text(),
                LineageFormat::Json => serde_json::to_string_pretty(&lineage.to_json())? + "\n",
                LineageFormat::Mermaid => lineage.to_mermaid(),
                LineageFormat::Dot => lineage.to_dot(),
            };
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            events,
            seed,
            start,
            step_ms,
            out,
        } => {
            let mut opts = GenerateOptions {
                events,
                seed,
                step_ms,
                ..Default::default()
            };
            if let Some(s) = start {
                opts.start_ms = parse_start(&s, chrono::Utc::now().timestamp_millis())?;
            }
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let file = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let n = generate(opts, &mut w)
                .with_context(|| format!("cannot write {}", out.display()))?;
            std::io::Write::flush(&mut w)?;
            println!("wrote {n} events to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--start`: an RFC 3339 time, or `now-<duration>` relative to `now_ms`.
fn parse_start(text: &str, now_ms: i64) -> Result<i64> {
    if let Some(ago) = text.strip_prefix("now-") {
        let ms = silt_core::config::parse_duration_ms(ago)
            .map_err(|e| anyhow::anyhow!("--start: {e}"))?;
        return Ok(now_ms - ms);
    }
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--start `{text}` is neither an RFC 3339 time like 2026-01-01T00:00:00Z nor `now-3h`"))?
        .timestamp_millis())
}

fn open(p: &ProjectArgs) -> Result<Local> {
    Ok(Local::open(
        &p.project,
        p.warehouse.clone(),
        Arc::new(SystemClock),
    )?)
}

fn outcome(
    ingest: Option<&IngestReport>,
    run: Option<&RunRecord>,
    warehouse: &Path,
) -> Result<ExitCode> {
    if let Some(run) = run {
        let failures = run.failures();
        if !failures.is_empty() {
            anyhow::bail!("transform failed:\n  {}", failures.join("\n  "));
        }
    }
    if let Some(ingest) = ingest.filter(|i| !i.rejected.is_empty()) {
        eprintln!(
            "{} message(s) rejected; every valid message landed. Details: {}",
            ingest.rejected.len(),
            warehouse.join("quarantine/ingest").display()
        );
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_ingest(r: &IngestReport) {
    let t = r.run.total();
    println!(
        "ingest: {} messages read, {} records decoded, {} skipped (tombstones), {} rejected  [{} ms]",
        t.read,
        t.decoded,
        t.skipped,
        t.rejected,
        r.run.finished_ms - r.run.started_ms
    );
    for rej in r.rejected.iter().take(SHOW_REJECTIONS) {
        println!("  rejected {}: {}", rej.reference, rej.reason);
    }
    if r.rejected.len() > SHOW_REJECTIONS {
        println!("  … and {} more", r.rejected.len() - SHOW_REJECTIONS);
    }
}

fn print_land(r: &LandReport) {
    let t = r.run.total();
    println!(
        "land: {} objects created ({} already present), {} rows, {} bytes, {} quarantined  [{} ms]",
        t.objects_created,
        t.objects_existing,
        t.landed,
        t.bytes_written,
        t.rejected,
        r.run.finished_ms - r.run.started_ms
    );
    for q in r.quarantined.iter().take(SHOW_REJECTIONS) {
        println!(
            "  quarantined {} ({}): {}",
            q.reference, q.origin, q.message
        );
    }
}

fn print_transform(run: &RunRecord) {
    println!(
        "transform ({}): {} ms",
        run.engine,
        run.finished_ms - run.started_ms
    );
    for m in &run.models {
        let status = match m.status {
            ModelStatus::Success => "built",
            ModelStatus::UpToDate => "up to date",
            ModelStatus::Failed => "FAILED",
            ModelStatus::TestFailed => "TEST FAILED",
            ModelStatus::Skipped => "skipped",
            ModelStatus::NoData => "no data yet",
            ModelStatus::Deferred => "deferred",
            ModelStatus::OverBudget => "REFUSED (over budget)",
        };
        let rows = m
            .stats
            .rows
            .map_or(String::new(), |r| format!(", {r} rows"));
        let tests = if m.tests.is_empty() {
            String::new()
        } else {
            format!(", {} tests", m.tests.len())
        };
        println!(
            "  {:<24} {status}{rows}{tests}  [{} ms]",
            m.model, m.elapsed_ms
        );
        if let Some(reason) = &m.reason {
            println!("    {reason}");
        }
    }
}

/// A byte-count progress bar on a terminal; nothing otherwise.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(inputs: &[PathBuf]) -> Self {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let total: u64 = inputs
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} ingest+land [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar(Some(bar))
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times() {
        assert_eq!(parse_start("now-3h", 10_800_000).unwrap(), 0);
        assert_eq!(parse_start("1970-01-01T00:00:01Z", 0).unwrap(), 1_000);
        assert!(parse_start("now-3 hours", 0).is_err());
        assert!(parse_start("yesterday", 0).is_err());
    }
}
