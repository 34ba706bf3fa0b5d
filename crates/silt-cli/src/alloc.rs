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
//! zstd, which compresses the Parquet pages, allocates through the C
//! library's `malloc`, not mimalloc. Its work area (several hundred KiB)
//! was once allocated per column of every file, and glibc's defaults hand
//! such blocks back to the kernel (by `munmap`, or by trimming the heap's
//! top past 2× its adaptive threshold), so each file's columns faulted in
//! freshly zeroed pages again: over half of `land`'s page faults. The two
//! streaming stages therefore also run with `GLIBC_TUNABLES` that serve
//! those blocks from the heap and keep up to 64 MiB free at its top. Since
//! landing keeps one zstd context per file, land's faults are the same
//! with or without it; decode's are fewer with it (README, "Benchmarks"),
//! so it stays. Other C libraries ignore the variable.
//!
//! mimalloc reads its options once, from the environment, while the process
//! loads, before `main`. Setting them from Rust afterwards needs its C API
//! (`unsafe`, which this workspace forbids) and would come too late for the
//! first arena anyway. So `silt` starts itself again, in place (`exec`),
//! with the settings it is missing. Settings already in the environment are
//! left as they are, so a user can still choose others.

use std::ffi::OsString;

/// The variables [`settings`] may set, for the log.
const NAMES: [&str; 3] = [
    "MIMALLOC_ARENA_EAGER_COMMIT",
    "MIMALLOC_PURGE_DELAY",
    "GLIBC_TUNABLES",
];

/// glibc's `malloc` for the streaming stages: blocks up to 4 MiB from the
/// heap rather than their own mappings, and up to 64 MiB free at the top
/// of the heap kept rather than returned.
pub const STREAM_GLIBC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864";

/// The allocators' options and the values `silt` runs with, by command.
pub fn settings(command: Option<&str>) -> Vec<(&'static str, &'static str)> {
    // Streaming stages allocate again what the last batch freed.
    let streaming = matches!(command, Some("ingest" | "land"));
    let mut settings = vec![
        // Commit arena memory as it is used, not the whole arena up front.
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        // Streaming stages keep freed memory a second for the next batch;
        // the others give it back to the system at once.
        ("MIMALLOC_PURGE_DELAY", if streaming { "1000" } else { "0" }),
    ];
    if streaming {
        settings.push(("GLIBC_TUNABLES", STREAM_GLIBC_TUNABLES));
    }
    settings
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
    NAMES
        .iter()
        .map(|name| match std::env::var(name) {
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
        assert_eq!(missing(None, env(&[])), Some(settings(None)));
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
            Some(vec![("GLIBC_TUNABLES", STREAM_GLIBC_TUNABLES)])
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

    #[test]
    fn only_streaming_stages_keep_the_c_heap_and_every_setting_is_logged() {
        let glibc = |c: Option<&str>| {
            settings(c)
                .into_iter()
                .find(|(name, _)| *name == "GLIBC_TUNABLES")
        };
        for c in ["ingest", "land"] {
            assert_eq!(
                glibc(Some(c)),
                Some(("GLIBC_TUNABLES", STREAM_GLIBC_TUNABLES))
            );
        }
        for c in [None, Some("run"), Some("transform")] {
            assert_eq!(glibc(c), None, "{c:?}");
        }
        for c in [None, Some("land")] {
            assert!(settings(c).iter().all(|(name, _)| NAMES.contains(name)));
        }
        // A user's own tunables are theirs: nothing is added to them.
        assert_eq!(
            missing(
                Some("land"),
                env(&[
                    ("MIMALLOC_PURGE_DELAY", "10"),
                    ("MIMALLOC_ARENA_EAGER_COMMIT", "1"),
                    ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"),
                ])
            ),
            None
        );
    }

    #[test]
    fn the_benchmark_and_the_functions_run_with_the_streaming_settings() {
        // `make bench` and the Lambda templates spell the values out again,
        // in their own languages: they must not drift from these.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in [
            "Makefile",
            "infra/terraform/modules/silt/functions.tf",
            "infra/sam/template.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            for (name, value) in settings(Some("land")) {
                assert!(
                    text.contains(name) && text.contains(value),
                    "{file} lacks {name}={value}"
                );
            }
        }
    }
}
