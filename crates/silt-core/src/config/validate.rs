//! From the raw shape to a validated [`Project`]: every setting checked
//! once, at the edge, with errors that name the file, the field and what
//! would be valid.

use super::raw::*;
use super::*;
use crate::error::{Error, Result};
use crate::sql::check_identifier;

impl Project {
    /// Parses and validates `silt.toml` text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Project> {
        let err = |field: &str, message: String| Error::Config {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message already says which key and what was expected.
            let field = e
                .span()
                .map(|s| format!("at byte {}", s.start))
                .unwrap_or_else(|| "(document)".into());
            err(&field, e.message().to_string())
        })?;

        check_identifier(&raw.project.name)
            .map_err(|e| err("project.name", format!("the project name {e}")))?;

        let mut datasets = BTreeMap::new();
        for (name, d) in &raw.datasets {
            let field = |f: &str| format!("datasets.\"{name}\".{f}");
            let id: DatasetId = name
                .parse()
                .map_err(|e: String| err(&format!("datasets.\"{name}\""), e))?;
            if d.primary_key.is_empty() {
                return Err(err(
                    &field("primary_key"),
                    "must name at least one column".into(),
                ));
            }
            for c in &d.primary_key {
                check_identifier(c)
                    .map_err(|e| err(&field("primary_key"), format!("column {e}")))?;
            }
            let partition = one_of(
                &d.partition,
                "a partition grain",
                &[("hour", PartitionGrain::Hour), ("day", PartitionGrain::Day)],
            )
            .map_err(|e| err(&field("partition"), e))?;
            let mut pii = BTreeMap::new();
            for (col, policy) in &d.pii {
                check_identifier(col).map_err(|e| err(&field("pii"), format!("column {e}")))?;
                let policy = one_of(
                    policy,
                    "a PII policy",
                    &[
                        ("hash", PiiPolicy::Hash),
                        ("redact", PiiPolicy::Redact),
                        ("drop", PiiPolicy::Drop),
                    ],
                )
                .map_err(|e| err(&field(&format!("pii.{col}")), e))?;
                if policy != PiiPolicy::Hash && d.primary_key.contains(col) {
                    return Err(err(
                        &field(&format!("pii.{col}")),
                        "a primary-key column can only be masked with \"hash\": redacting or dropping it would merge every row into one".into(),
                    ));
                }
                pii.insert(col.clone(), policy);
            }
            let freshness = match &d.freshness {
                None => None,
                Some(f) => {
                    let max_delay_ms = parse_duration_ms(&f.max_delay)
                        .map_err(|e| err(&field("freshness.max_delay"), e))?;
                    let window_ms = parse_duration_ms(&f.window)
                        .map_err(|e| err(&field("freshness.window"), e))?;
                    if !(f.objective > 0.0 && f.objective < 1.0) {
                        return Err(err(
                            &field("freshness.objective"),
                            format!(
                                "{} is not a fraction strictly between 0 and 1 (for example 0.99)",
                                f.objective
                            ),
                        ));
                    }
                    Some(FreshnessSlo {
                        max_delay_ms,
                        objective: f.objective,
                        window_ms,
                    })
                }
            };
            let mut columns = Vec::new();
            for (name, spec) in &d.columns {
                let f = field(&format!("columns.{name}"));
                check_identifier(name).map_err(|e| err(&f, format!("column {e}")))?;
                let (ty, required) = declared_type(spec).map_err(|e| err(&f, e))?;
                if ty != ColumnType::String
                    && matches!(pii.get(name), Some(PiiPolicy::Hash | PiiPolicy::Redact))
                {
                    return Err(err(
                        &f,
                        format!(
                            "a PII column is stored masked, as text: declare it \"string\", not \"{ty}\""
                        ),
                    ));
                }
                columns.push(DeclaredColumn {
                    name: name.clone(),
                    ty,
                    required,
                });
            }
            datasets.insert(
                id,
                Dataset {
                    primary_key: d.primary_key.clone(),
                    partition,
                    pii,
                    freshness,
                    contiguous_positions: d.contiguous_positions,
                    columns,
                },
            );
        }

        let mut sources = BTreeMap::new();
        for (i, s) in raw.sources.iter().enumerate() {
            let field = |f: &str| format!("sources[{i}].{f}");
            check_identifier(&s.name)
                .map_err(|e| err(&field("name"), format!("the source name {e}")))?;
            let format = one_of(
                &s.format,
                "a format",
                &[
                    ("auto", Format::Auto),
                    ("debezium", Format::Debezium),
                    ("dms", Format::Dms),
                    ("dynamodb", Format::Dynamodb),
                    ("plain", Format::Plain),
                ],
            )
            .map_err(|e| err(&field("format"), e))?;
            let plain = match &s.plain {
                None if format == Format::Plain => {
                    return Err(err(
                        &field("plain"),
                        "a plain source needs a [sources.plain] table naming dataset and timestamp"
                            .into(),
                    ));
                }
                None => None,
                Some(p) => {
                    let dataset: DatasetId =
                        format!("{}.{}", s.name, p.dataset)
                            .parse()
                            .map_err(|e: String| {
                                err(
                                    &field("plain.dataset"),
                                    format!("{e} (give `schema.table`)"),
                                )
                            })?;
                    if !datasets.contains_key(&dataset) {
                        return Err(err(
                            &field("plain.dataset"),
                            format!("dataset `{dataset}` is not declared under [datasets]"),
                        ));
                    }
                    for (f, v) in [
                        ("plain.timestamp", Some(&p.timestamp)),
                        ("plain.position", p.position.as_ref()),
                        ("plain.delete_flag", p.delete_flag.as_ref()),
                    ] {
                        if let Some(v) = v {
                            check_identifier(v)
                                .map_err(|e| err(&field(f), format!("field {e}")))?;
                        }
                    }
                    Some(PlainSpec {
                        dataset,
                        timestamp_field: p.timestamp.clone(),
                        position_field: p.position.clone(),
                        delete_field: p.delete_flag.clone(),
                    })
                }
            };
            if sources.contains_key(&s.name) {
                return Err(err(
                    &field("name"),
                    format!("source `{}` is declared twice", s.name),
                ));
            }
            sources.insert(
                s.name.clone(),
                Source {
                    name: s.name.clone(),
                    format,
                    plain,
                },
            );
        }
        if sources.is_empty() {
            return Err(err(
                "sources",
                "declare at least one [[sources]] entry".into(),
            ));
        }
        for id in datasets.keys() {
            if !sources.contains_key(id.source()) {
                return Err(err(
                    &format!("datasets.\"{id}\""),
                    format!("source `{}` is not declared under [[sources]]", id.source()),
                ));
            }
        }

        if raw.pii.key_env.is_empty() {
            return Err(err(
                "pii.key_env",
                "must name an environment variable".into(),
            ));
        }
        if raw.landing.format != "parquet" {
            return Err(err(
                "landing.format",
                format!("`{}` is not supported: use \"parquet\"", raw.landing.format),
            ));
        }
        let target_file_bytes = parse_size(&raw.landing.target_file_size)
            .map_err(|e| err("landing.target_file_size", e))?;
        if target_file_bytes < 1024 {
            return Err(err(
                "landing.target_file_size",
                "must be at least 1KiB".into(),
            ));
        }
        if raw.landing.batch_records == 0 {
            return Err(err("landing.batch_records", "must be at least 1".into()));
        }
        if raw.landing.root.is_empty() {
            return Err(err(
                "landing.root",
                "must be a folder or an s3://bucket/prefix URI".into(),
            ));
        }
        let encodings = one_of(
            &raw.landing.encodings,
            "an encoding choice",
            &[
                ("delta", ParquetEncodings::Delta),
                ("plain", ParquetEncodings::Plain),
            ],
        )
        .map_err(|e| err("landing.encodings", e))?;
        let max_message_bytes = parse_size(&raw.ingest.max_message_size)
            .map_err(|e| err("ingest.max_message_size", e))?
            as usize;
        let max_value_bytes = parse_size(&raw.ingest.max_value_size)
            .map_err(|e| err("ingest.max_value_size", e))? as usize;
        let kind = one_of(
            &raw.engine.kind,
            "an engine",
            &[
                ("datafusion", EngineKind::Datafusion),
                ("athena", EngineKind::Athena),
            ],
        )
        .map_err(|e| err("engine.kind", e))?;
        if raw.engine.target_partitions == 0 {
            return Err(err("engine.target_partitions", "must be at least 1".into()));
        }
        let memory_limit_bytes =
            parse_size(&raw.engine.memory_limit).map_err(|e| err("engine.memory_limit", e))?;
        if raw.models.path.is_empty() || raw.models.path.contains("..") {
            return Err(err(
                "models.path",
                "must be a folder inside the project".into(),
            ));
        }

        let models_max_bytes_scanned = raw
            .models
            .max_bytes_scanned
            .as_deref()
            .map(|t| parse_size(t).map_err(|e| err("models.max_bytes_scanned", e)))
            .transpose()?;
        let routing = Routing {
            enabled: raw.routing.enabled,
            max_input_bytes: parse_size(&raw.routing.max_input)
                .map_err(|e| err("routing.max_input", e))?,
        };
        let cost = cost_settings(&raw.cost).map_err(|(f, m)| err(&f, m))?;
        let undeclared = one_of(
            &raw.pii.undeclared,
            "a policy",
            &[
                ("quarantine", UndeclaredPii::Quarantine),
                ("warn", UndeclaredPii::Warn),
                ("off", UndeclaredPii::Off),
            ],
        )
        .map_err(|e| err("pii.undeclared", e))?;

        Ok(Project {
            name: raw.project.name,
            file: file.to_string(),
            sources,
            datasets,
            pii: PiiSettings {
                key_env: raw.pii.key_env,
                undeclared,
            },
            landing: Landing {
                root: raw.landing.root,
                target_file_bytes,
                batch_records: raw.landing.batch_records,
                encodings,
            },
            ingest: IngestLimits {
                max_message_bytes,
                max_value_bytes,
            },
            models_path: raw.models.path,
            models_max_bytes_scanned,
            engine: EngineSettings {
                kind,
                target_partitions: raw.engine.target_partitions,
                memory_limit_bytes,
            },
            routing,
            cost,
        })
    }
}

/// Validates `[cost]`, starting from the defaults; errors are (field, message).
fn cost_settings(raw: &RawCost) -> std::result::Result<CostSettings, (String, String)> {
    let mut c = CostSettings::default();
    let price = |field: &str, v: Option<f64>, slot: &mut f64| match v {
        Some(p) if !(p.is_finite() && p >= 0.0) => Err((
            format!("cost.{field}"),
            format!("{p} is not a price: use a number of US dollars, 0 or more"),
        )),
        Some(p) => {
            *slot = p;
            Ok(())
        }
        None => Ok(()),
    };
    price(
        "athena_usd_per_tb",
        raw.athena_usd_per_tb,
        &mut c.athena_usd_per_tb,
    )?;
    price(
        "lambda_usd_per_gb_second",
        raw.lambda_usd_per_gb_second,
        &mut c.lambda_usd_per_gb_second,
    )?;
    price(
        "sqs_usd_per_million_requests",
        raw.sqs_usd_per_million_requests,
        &mut c.sqs_usd_per_million_requests,
    )?;
    price(
        "s3_usd_per_thousand_puts",
        raw.s3_usd_per_thousand_puts,
        &mut c.s3_usd_per_thousand_puts,
    )?;
    if let Some(m) = &raw.athena_min_bytes_per_query {
        c.athena_min_bytes_per_query =
            parse_size(m).map_err(|e| ("cost.athena_min_bytes_per_query".to_string(), e))?;
    }
    for (stage, size) in &raw.lambda_memory {
        let field = format!("cost.lambda_memory.{stage}");
        if !c.lambda_memory_mib.contains_key(stage) {
            return Err((
                field,
                "is not a function: use ingest, land, transform or monitor".into(),
            ));
        }
        let bytes = parse_size(size).map_err(|e| (field.clone(), e))?;
        // Lambda's own bounds: 128 MB to 10,240 MB.
        if !(128 * 1024 * 1024..=10_240 * 1024 * 1024).contains(&bytes) {
            return Err((
                field,
                format!("`{size}` is outside Lambda's 128MiB to 10240MiB"),
            ));
        }
        c.lambda_memory_mib
            .insert(stage.clone(), bytes / (1024 * 1024));
    }
    Ok(c)
}

/// The choice `value` names among `choices`, or the message every
/// enumerated setting gives: `` `x` is not <what>: use "a", "b" or "c" ``.
fn one_of<T: Copy>(value: &str, what: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == value) {
        return Ok(*choice);
    }
    let names: Vec<String> = choices
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let listed = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(format!("`{value}` is not {what}: use {listed}"))
}

/// Parses `30s`, `15m`, `6h`, `28d` (or plain milliseconds `250ms`) into milliseconds.
pub fn parse_duration_ms(text: &str) -> std::result::Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        format!("`{text}` is not a duration: use a whole number and a unit, like \"15m\"")
    })?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` has no known unit: use ms, s, m, h or d")),
    };
    n.checked_mul(factor)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{text}` must be positive and below 292 million years"))
}

/// Parses sizes such as `512`, `64KiB`, `128MiB`, `1GiB`, `10MB` into bytes.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{text}` is not a size: use a whole number and a unit, like \"128MiB\"")
    })?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}` has no known unit: use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// A declared column's type and nullability: `"timestamp"`,
/// `"decimal(10,2) not null"`.
fn declared_type(spec: &str) -> Result<(ColumnType, bool), String> {
    let lower = spec.trim().to_ascii_lowercase();
    let (ty, required) = match lower.strip_suffix("not null") {
        Some(t) => (t.trim_end(), true),
        None => (lower.as_str(), false),
    };
    Ok((ty.parse()?, required))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[project]
name = "shop"

[[sources]]
name = "shop"
format = "debezium"

[datasets."shop.public.orders"]
primary_key = ["order_id"]
freshness = { max_delay = "15m" }

[datasets."shop.public.customers"]
primary_key = ["customer_id"]
pii = { email = "hash", full_name = "redact" }
"#;

    #[test]
    fn parses_a_good_config_with_defaults() {
        let p = Project::parse(GOOD, "silt.toml").unwrap();
        assert_eq!(p.name, "shop");
        assert_eq!(p.datasets.len(), 2);
        let orders = &p.datasets[&"shop.public.orders".parse().unwrap()];
        assert_eq!(orders.freshness.unwrap().max_delay_ms, 900_000);
        assert_eq!(p.landing.target_file_bytes, 128 << 20);
        assert_eq!(p.ingest.max_message_bytes, 256 << 10);
        assert!(p.needs_pii_key());
        assert_eq!(p.default_source().unwrap().format, Format::Debezium);
    }

    fn error_of(text: &str) -> String {
        Project::parse(text, "x/silt.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_field_and_valid_values() {
        let e = error_of(&GOOD.replace("format = \"debezium\"", "format = \"avro\""));
        assert!(
            e.starts_with("x/silt.toml: field `sources[0].format`"),
            "{e}"
        );
        assert!(e.contains("\"debezium\""), "{e}");

        let e = error_of(&GOOD.replace("\"redact\"", "\"blur\""));
        assert!(
            e.contains("datasets.\"shop.public.customers\".pii.full_name"),
            "{e}"
        );
        assert!(e.contains("\"hash\", \"redact\" or \"drop\""), "{e}");

        let e = error_of(&GOOD.replace("max_delay = \"15m\"", "max_delay = \"15 minutes\""));
        assert!(e.contains("freshness.max_delay"), "{e}");

        let e = error_of(&format!("{GOOD}\n[landing]\nbatch_records = 0\n"));
        assert!(e.contains("landing.batch_records"), "{e}");

        let e = error_of(&format!("{GOOD}\n[landing]\nencodings = \"rle\"\n"));
        assert!(e.contains("landing.encodings"), "{e}");
        assert!(e.contains("\"delta\" or \"plain\""), "{e}");
        let parse = |extra: &str| Project::parse(&format!("{GOOD}{extra}"), "x/silt.toml").unwrap();
        assert_eq!(parse("").landing.encodings, ParquetEncodings::Plain);
        assert_eq!(
            parse("\n[landing]\nencodings = \"delta\"\n")
                .landing
                .encodings,
            ParquetEncodings::Delta
        );

        let e = error_of(&format!(
            "{GOOD}\n[datasets.\"other.public.t\"]\nprimary_key = [\"id\"]\n"
        ));
        assert!(e.contains("source `other` is not declared"), "{e}");

        let e = error_of(&GOOD.replace("[project]", "[projekt]"));
        assert!(e.contains("x/silt.toml"), "{e}");
    }

    #[test]
    fn enumerated_settings_name_every_valid_choice() {
        let orders = "[datasets.\"shop.public.orders\"]\nprimary_key = [\"order_id\"]\n";
        for (text, message) in [
            (
                GOOD.replace("format = \"debezium\"", "format = \"avro\""),
                "`avro` is not a format: use \"auto\", \"debezium\", \"dms\", \"dynamodb\" or \"plain\"",
            ),
            (
                GOOD.replace(orders, &format!("{orders}partition = \"week\"\n")),
                "`week` is not a partition grain: use \"hour\" or \"day\"",
            ),
            (
                GOOD.replace("\"redact\"", "\"blur\""),
                "`blur` is not a PII policy: use \"hash\", \"redact\" or \"drop\"",
            ),
            (
                format!("{GOOD}\n[landing]\nencodings = \"rle\"\n"),
                "`rle` is not an encoding choice: use \"delta\" or \"plain\"",
            ),
            (
                format!("{GOOD}\n[engine]\nkind = \"spark\"\n"),
                "`spark` is not an engine: use \"datafusion\" or \"athena\"",
            ),
            (
                format!("{GOOD}\n[pii]\nundeclared = \"maybe\"\n"),
                "`maybe` is not a policy: use \"quarantine\", \"warn\" or \"off\"",
            ),
        ] {
            let e = error_of(&text);
            assert!(e.ends_with(message), "{e}");
        }
        assert_eq!(
            one_of("x", "a thing", &[("a", 1)]),
            Err("`x` is not a thing: use \"a\"".into())
        );
        assert_eq!(one_of("b", "a thing", &[("a", 1), ("b", 2)]), Ok(2));
    }

    #[test]
    fn key_columns_cannot_be_redacted() {
        let e = error_of(&GOOD.replace("email = \"hash\"", "customer_id = \"drop\""));
        assert!(e.contains("primary-key column"), "{e}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("6h").unwrap(), 21_600_000);
        assert!(parse_duration_ms("0m").is_err());
        assert!(parse_duration_ms("5w").is_err());
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert!(parse_size("ten").is_err());
    }

    #[test]
    fn declared_columns_read_type_and_nullability() {
        let with = |columns: &str| {
            GOOD.replace(
                "freshness = { max_delay = \"15m\" }",
                &format!("freshness = {{ max_delay = \"15m\" }}\ncolumns = {columns}"),
            )
        };
        let p = Project::parse(
            &with(r#"{ paid_at = "timestamp", amount = "DECIMAL(10,2) NOT NULL", order_id = "bigint not null" }"#),
            "x/silt.toml",
        )
        .unwrap();
        let cols = &p.datasets[&"shop.public.orders".parse().unwrap()].columns;
        let got: Vec<_> = cols
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.required))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "amount",
                    ColumnType::Decimal {
                        precision: 10,
                        scale: 2
                    },
                    true
                ),
                ("order_id", ColumnType::Int64, true),
                ("paid_at", ColumnType::Timestamp, false),
            ]
        );
        let e = error_of(&with(r#"{ amount = "money" }"#));
        assert!(
            e.contains("datasets.\"shop.public.orders\".columns.amount"),
            "{e}"
        );
        assert!(e.contains("decimal(p,s)"), "{e}");
        let e = error_of(&with(r#"{ amount = "decimal(40,2)" }"#));
        assert!(e.contains("columns.amount"), "{e}");
        // A masked column is stored as text.
        let e = error_of(&GOOD.replace(
            "pii = { email = \"hash\", full_name = \"redact\" }",
            "pii = { email = \"hash\", full_name = \"redact\" }\ncolumns = { email = \"binary\" }",
        ));
        assert!(
            e.contains("columns.email") && e.contains("declare it \"string\""),
            "{e}"
        );
    }
}
