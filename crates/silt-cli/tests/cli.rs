//! The `silt` binary as a user meets it: commands, messages and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn silt(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_silt"));
    cmd.args(args).env_remove("SILT_PII_KEY");
    if let Some(k) = key {
        cmd.env("SILT_PII_KEY", k);
    }
    cmd.output().unwrap()
}

fn shop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_prints_the_dag() {
    let out = silt(&["validate", "--project", shop().to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "customers_current -> order_changes_daily -> orders_current -> daily_revenue"
        )
    );
}

#[test]
fn generate_run_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = silt(
        &[
            "generate",
            "--events",
            "400",
            "--seed",
            "1",
            // The form `make demo` uses.
            "--start",
            "now-2h",
            "--out",
            events.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wh = dir.path().join("wh");
    let shop_dir = shop();
    let args = [
        "run",
        "--project",
        shop_dir.to_str().unwrap(),
        "--input",
        events.to_str().unwrap(),
        "--warehouse",
        wh.to_str().unwrap(),
    ];

    // Without the PII key the run refuses to start, naming the variable.
    let out = silt(&args, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("SILT_PII_KEY"),
        "{}",
        text(&out.stderr)
    );

    let out = silt(&args, Some("k"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ingest: 400 messages read"), "{stdout}");
    assert!(stdout.contains("orders_current"), "{stdout}");
    assert!(wh.join("reports/latest.json").exists());

    // A malformed line: exit code 3, after everything valid landed.
    let mut content = std::fs::read_to_string(&events).unwrap();
    content.push_str("{not json\n");
    std::fs::write(&events, content).unwrap();
    let out = silt(&args, Some("k"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("rejected {}:401: invalid_json", events.display())),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("1 message(s) rejected"));

    let out = silt(
        &[
            "monitor",
            "--project",
            shop().to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--json",
        ],
        Some("k"),
    );
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["datasets"].as_array().unwrap().len(), 2);

    // What landed is what the example declares ...
    let diff = |project: &Path| {
        silt(
            &[
                "contract",
                "diff",
                "--project",
                project.to_str().unwrap(),
                "--warehouse",
                wh.to_str().unwrap(),
            ],
            Some("k"),
        )
    };
    let out = diff(&shop_dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("shop.public.orders: as declared"),
        "{}",
        text(&out.stdout)
    );
    // ... and a contract that leaves `note` out fails, naming it.
    let narrower = dir.path().join("narrower");
    copy_project(&shop_dir, &narrower, |toml| {
        toml.replace("note = \"string\"\n", "")
    });
    let out = diff(&narrower);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("+ note string (landed, not declared)"),
        "{}",
        text(&out.stdout)
    );
}

/// Copies a project's `silt.toml` (changed by `edit`) and models to `to`.
fn copy_project(from: &Path, to: &Path, edit: impl Fn(&str) -> String) {
    std::fs::create_dir_all(to.join("models")).unwrap();
    let toml = std::fs::read_to_string(from.join("silt.toml")).unwrap();
    std::fs::write(to.join("silt.toml"), edit(&toml)).unwrap();
    for entry in std::fs::read_dir(from.join("models")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("models").join(path.file_name().unwrap())).unwrap();
    }
}

/// A model naming a column the dataset's contract does not declare fails
/// `silt validate` before any data flows, naming the model and the column.
#[test]
fn validate_fails_a_model_naming_an_undeclared_column() {
    let dir = tempfile::tempdir().unwrap();
    copy_project(&shop(), dir.path(), str::to_string);
    let validate = || {
        silt(
            &["validate", "--project", dir.path().to_str().unwrap()],
            None,
        )
    };
    let out = validate();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("contracts ok: 4 model(s) read only declared columns"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(
        dir.path().join("models/colours.sql"),
        "SELECT order_id, colour FROM {{ ref('orders_current') }}\n",
    )
    .unwrap();
    let out = validate();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("colours:") && err.contains("colour"), "{err}");
    // A data test naming a column the result lacks fails the same way.
    std::fs::write(
        dir.path().join("models/colours.sql"),
        "/* silt\n[tests]\nnot_null = [\"colour\"]\n*/\nSELECT order_id FROM {{ ref('orders_current') }}\n",
    )
    .unwrap();
    let err = text(&validate().stderr);
    assert!(err.contains("a data test names `colour`"), "{err}");
}

#[test]
fn bad_config_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("silt.toml"),
        "[project]\nname = \"x\"\n[[sources]]\nname = \"s\"\nformat = \"xml\"\n",
    )
    .unwrap();
    let out = silt(
        &["validate", "--project", dir.path().to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("silt.toml: field `sources[0].format`") && err.contains("\"debezium\""),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = silt(&["run"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lineage_prints_and_exports_the_dag() {
    let shop = shop();
    let project = shop.to_str().unwrap();
    let out = silt(&["lineage", "--project", project], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains(
            "shop.public.orders\n  order_changes_daily\n  orders_current\n    daily_revenue\n"
        ),
        "{printed}"
    );
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("lineage.json");
    let out = silt(
        &[
            "lineage",
            "--project",
            project,
            "--format",
            "json",
            "--out",
            json_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let edges: Vec<(String, String)> = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(edges.contains(&("shop.public.customers".into(), "customers_current".into())));
    assert!(edges.contains(&("orders_current".into(), "daily_revenue".into())));
    for (format, marker) in [("mermaid", "flowchart LR"), ("dot", "digraph lineage")] {
        let out = silt(&["lineage", "--project", project, "--format", format], None);
        assert!(out.status.success());
        assert!(text(&out.stdout).starts_with(marker), "{format}");
    }
}
