//! The allocator settings the `silt` process runs with.
//!
//! mimalloc's defaults keep freed memory committed for a while and commit
//! whole arenas eagerly (backed by transparent huge pages). For Silt's
//! transform that made peak memory follow the work done instead of
//! `engine.memory_limit`: DataFusion frees and allocates in waves on several
//! threads, and the kept memory added up (README, "Load"). With arenas
//! committed on demand and freed memory returned at once, the peak follows
//! the configured limit.
//!
//! `silt ingest` and `silt land` are another shape of work: one batch after
//! another, each freeing what the next allocates again. Returning that
//! memory at once made the kernel zero it afresh for every batch, a quarter
//! of their time; their peak is bounded by the batch either way. So those
//! two keep freed memory for mimalloc's own default second.
//!
//! mimalloc reads its options once, from the environment, while the process
//! loads, before `main`. Setting them from Rust afterwards needs its C API
//! (`unsafe`, which this workspace forbids) and would come too late for the
//! first arena anyway. So `silt` starts itself again, in place (`exec`),
//! with the settings it is missing. Settings already in the environment are
//! left as they are, so a user can still choose others.

use std::ffi::OsString;

/// mimalloc's options and the values `silt` runs with, by command.
pub fn settings(command: Option<&str>) -> [(&'static str, &'static str); 2] {
    let purge_delay = match command {
        // Streaming stages: freed memory is allocated again by the next batch.
        Some("ingest" | "land") => "1000",
        // Return freed memory to the system at once instead of after a delay.
        _ => "0",
    };
    [
        // Commit arena memory as it is used, not the whole arena up front.
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ("MIMALLOC_PURGE_DELAY", purge_delay),
    ]
}

/// Present in the environment of a `silt` that already started itself
/// again, so a failed or repeated start can never loop.
#[cfg_attr(
    any(not(unix), feature = "system-alloc"),
    allow(
        dead_code,
        reason = "only a mimalloc build on Unix starts itself again"
    )
)]
pub const MARK: &str = "SILT_ALLOCATOR_SETTINGS";

/// The settings missing from an environment (`None` once `silt` started itself again).
#[cfg_attr(
    any(not(unix), feature = "system-alloc"),
    allow(
        dead_code,
        reason = "only a mimalloc build on Unix starts itself again"
    )
)]
pub fn missing(
    command: Option<&str>,
    var: impl Fn(&str) -> Option<OsString>,
) -> Option<Vec<(&'static str, &'static str)>> {
    if var(MARK).is_some() {
        return None;
    }
    let missing: Vec<_> = settings(command)
        .into_iter()
        .filter(|(name, _)| var(name).is_none())
        .collect();
    (!missing.is_empty()).then_some(missing)
}

/// Starts this process again with the missing settings; returns only when
/// nothing is missing or the start failed (then the defaults stay).
pub fn apply(command: Option<&str>) {
    #[cfg(any(not(unix), feature = "system-alloc"))]
    let _ = command;
    #[cfg(all(unix, not(feature = "system-alloc")))]
    {
        use std::os::unix::process::CommandExt;
        let Some(missing) = missing(command, |name| std::env::var_os(name)) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        // `exec` replaces this process: the same pid, terminal, signals and exit code.
        let error = command.args(args).envs(missing).env(MARK, "1").exec();
        // Still here: the start failed. Running with the defaults beats not running.
        eprintln!("warning: running with the allocator's default settings ({error})");
    }
}

/// The settings in force, as `NAME=value` (`NAME` alone where unset), for the log.
pub fn in_force() -> Vec<String> {
    settings(None)
        .iter()
        .map(|(name, _)| match std::env::var(name) {
            Ok(v) => format!("{name}={v}"),
            Err(_) => (*name).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn adds_only_what_is_missing_and_never_twice() {
        assert_eq!(missing(None, env(&[])), Some(settings(None).to_vec()));
        assert_eq!(
            missing(None, env(&[("MIMALLOC_PURGE_DELAY", "1000")])),
            Some(vec![("MIMALLOC_ARENA_EAGER_COMMIT", "0")])
        );
        assert_eq!(
            missing(
                Some("land"),
                env(&[
                    ("MIMALLOC_PURGE_DELAY", "10"),
                    ("MIMALLOC_ARENA_EAGER_COMMIT", "1")
                ])
            ),
            None
        );
        assert_eq!(missing(None, env(&[(MARK, "1")])), None);
    }

    #[test]
    fn streaming_stages_keep_freed_memory_and_the_rest_return_it() {
        let delay = |c: Option<&str>| settings(c)[1];
        assert_eq!(delay(Some("ingest")), ("MIMALLOC_PURGE_DELAY", "1000"));
        assert_eq!(delay(Some("land")), ("MIMALLOC_PURGE_DELAY", "1000"));
        for c in [None, Some("run"), Some("transform"), Some("backfill")] {
            assert_eq!(delay(c), ("MIMALLOC_PURGE_DELAY", "0"), "{c:?}");
        }
    }
}
