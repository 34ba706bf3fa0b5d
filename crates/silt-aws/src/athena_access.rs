//! What Athena does in Glue and S3 as the caller, per kind of statement
//! Silt issues. Athena runs a query with the permissions of whoever started
//! it, so the transform role must allow each of these itself; moto runs no
//! SQL, so nothing else would show a missing one before a real deploy.
//! The tests check every row against the transform role in both templates,
//! and classify every statement in the golden files into a row.
//!
//! Glue actions are granted on the catalog, the database and its tables.
//! S3 actions name where they act: [`Place::Sources`] (the raw zone and
//! the curated models a query reads), [`Place::Target`] (the table the
//! statement writes, under `curated/`), [`Place::Results`] (the work group's
//! results location). Bucket-level actions (`s3:ListBucket`,
//! `s3:GetBucketLocation`) are granted on the bucket itself.

use crate::athena_rules::{Kind, kind};

/// A kind of statement, as far as access goes: CTAS splits by table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    /// Every statement: it reads its sources and writes its result.
    Any,
    /// `CREATE TABLE … AS` of a Hive table (`external_location` or the
    /// work group's location).
    HiveCtas,
    /// `CREATE TABLE … AS` with `table_type = 'ICEBERG'`.
    IcebergCtas,
    /// `CREATE EXTERNAL TABLE` (the raw zone's datasets).
    CreateExternal,
    /// `INSERT INTO`.
    Insert,
    /// `MERGE INTO` an Iceberg table.
    Merge,
    /// `UPDATE` of an Iceberg table.
    Update,
    /// `DELETE FROM` an Iceberg table.
    Delete,
    /// `ALTER TABLE … ADD COLUMNS`.
    Alter,
    /// `DROP TABLE`.
    Drop,
    /// `CREATE OR REPLACE VIEW`.
    View,
    /// `OPTIMIZE … REWRITE DATA USING BIN_PACK`.
    Optimize,
    /// `VACUUM`.
    Vacuum,
    /// `SELECT` (a count, a data test, a column description).
    Select,
}

/// Where an S3 action acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// What queries read: `raw/` and `curated/` in the lake.
    Sources,
    /// The table a statement writes: `curated/<model>/…` in the lake.
    Target,
    /// The work group's query results location.
    Results,
}

/// What Athena needs the caller to be allowed for one kind of statement.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The statement kind.
    pub statement: Statement,
    /// Glue actions, on the catalog, database and tables.
    pub glue: &'static [&'static str],
    /// S3 actions and where they act.
    pub s3: &'static [(&'static str, Place)],
    /// Where AWS documents it.
    pub doc: &'static str,
}

macro_rules! at {
    ($place:expr; $($a:expr),* $(,)?) => { &[$(($a, $place)),*] };
}

/// The table: one row per statement kind.
pub const ACCESS: &[Access] = &[
    Access {
        statement: Statement::Any,
        glue: &["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
        s3: &[
            ("s3:GetObject", Place::Sources),
            ("s3:ListBucket", Place::Sources),
            ("s3:GetBucketLocation", Place::Sources),
            ("s3:GetObject", Place::Results),
            ("s3:PutObject", Place::Results),
            ("s3:ListBucket", Place::Results),
            ("s3:GetBucketLocation", Place::Results),
            ("s3:AbortMultipartUpload", Place::Results),
            ("s3:ListMultipartUploadParts", Place::Results),
        ],
        doc: "https://docs.aws.amazon.com/athena/latest/ug/access.html (Athena reads the tables' S3 data and writes results as the caller); \
              https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html",
    },
    Access {
        statement: Statement::HiveCtas,
        glue: &[
            "glue:CreateTable",
            "glue:GetTable",
            "glue:GetDatabase",
            "glue:BatchCreatePartition",
            "glue:GetPartition",
            "glue:BatchGetPartition",
        ],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/ctas-considerations-limitations.html; \
              https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html",
    },
    Access {
        statement: Statement::IcebergCtas,
        glue: &[
            "glue:CreateTable",
            "glue:GetTable",
            "glue:GetDatabase",
            "glue:UpdateTable",
        ],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-creating-tables.html",
    },
    Access {
        statement: Statement::CreateExternal,
        glue: &["glue:CreateTable", "glue:GetTable", "glue:GetDatabase"],
        s3: at!(Place::Sources; "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html",
    },
    Access {
        statement: Statement::Insert,
        glue: &[
            "glue:GetTable",
            "glue:BatchCreatePartition",
            "glue:GetPartition",
            "glue:BatchGetPartition",
            "glue:UpdateTable",
        ],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/insert-into.html",
    },
    Access {
        statement: Statement::Merge,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/merge-into-statement.html",
    },
    Access {
        statement: Statement::Update,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/update-statement.html",
    },
    Access {
        statement: Statement::Delete,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/delete-statement.html (position delete files are written)",
    },
    Access {
        statement: Statement::Alter,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: &[],
        doc: "https://docs.aws.amazon.com/athena/latest/ug/alter-table-add-columns.html",
    },
    Access {
        statement: Statement::Drop,
        glue: &[
            "glue:GetTable",
            "glue:DeleteTable",
            "glue:GetPartitions",
            "glue:BatchDeletePartition",
        ],
        s3: &[],
        doc: "https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html (\"For delete actions in Athena, you must include permissions to AWS Glue actions\"); the data is deleted by Silt itself",
    },
    Access {
        statement: Statement::View,
        glue: &[
            "glue:CreateTable",
            "glue:UpdateTable",
            "glue:GetTable",
            "glue:GetDatabase",
        ],
        s3: &[],
        doc: "https://docs.aws.amazon.com/athena/latest/ug/views.html (a view is a Glue table)",
    },
    Access {
        statement: Statement::Optimize,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: at!(Place::Target; "s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/optimize-statement.html",
    },
    Access {
        statement: Statement::Vacuum,
        glue: &["glue:GetTable", "glue:UpdateTable"],
        s3: at!(Place::Target; "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"),
        doc: "https://docs.aws.amazon.com/athena/latest/ug/vacuum-statement.html (\"your query execution role must have s3:DeleteObject permissions\"; without it VACUUM succeeds and deletes nothing)",
    },
    Access {
        statement: Statement::Select,
        glue: &[],
        s3: &[],
        doc: "https://docs.aws.amazon.com/athena/latest/ug/access.html (what every statement needs)",
    },
];

/// The row for `statement`.
pub fn access(statement: Statement) -> &'static Access {
    ACCESS
        .iter()
        .find(|a| a.statement == statement)
        .unwrap_or(&ACCESS[0])
}

/// The kind of `sql`, as far as access goes; `None` for text Silt does not issue.
pub fn statement(sql: &str) -> Option<Statement> {
    Some(match kind(sql)? {
        Kind::Ctas if sql.contains("'ICEBERG'") => Statement::IcebergCtas,
        Kind::Ctas => Statement::HiveCtas,
        Kind::CreateExternal => Statement::CreateExternal,
        Kind::View => Statement::View,
        Kind::Drop => Statement::Drop,
        Kind::Alter => Statement::Alter,
        Kind::Insert => Statement::Insert,
        Kind::Merge => Statement::Merge,
        Kind::Update => Statement::Update,
        Kind::Delete => Statement::Delete,
        Kind::Optimize => Statement::Optimize,
        Kind::Vacuum => Statement::Vacuum,
        Kind::Select => Statement::Select,
    })
}

/// Every action a statement of this kind needs, with the row's for every
/// statement: `(action, place)`, where `place` is `None` for Glue.
pub fn needed(statement: Statement) -> Vec<(&'static str, Option<Place>)> {
    let mut out = Vec::new();
    for row in [access(Statement::Any), access(statement)] {
        out.extend(row.glue.iter().map(|a| (*a, None)));
        out.extend(row.s3.iter().map(|(a, p)| (*a, Some(*p))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_with_a_reference() {
        for k in [
            Statement::Any,
            Statement::HiveCtas,
            Statement::IcebergCtas,
            Statement::CreateExternal,
            Statement::Insert,
            Statement::Merge,
            Statement::Update,
            Statement::Delete,
            Statement::Alter,
            Statement::Drop,
            Statement::View,
            Statement::Optimize,
            Statement::Vacuum,
            Statement::Select,
        ] {
            let rows: Vec<_> = ACCESS.iter().filter(|a| a.statement == k).collect();
            assert_eq!(rows.len(), 1, "{k:?}");
            assert!(
                rows[0].doc.starts_with("https://docs.aws.amazon.com/"),
                "{k:?}"
            );
        }
    }

    #[test]
    fn a_ctas_is_hive_or_iceberg_by_its_table_type() {
        assert_eq!(
            statement("CREATE TABLE \"d\".\"t\" WITH (table_type = 'ICEBERG') AS SELECT 1"),
            Some(Statement::IcebergCtas)
        );
        assert_eq!(
            statement("CREATE TABLE \"d\".\"t\" WITH (format = 'PARQUET') AS SELECT 1"),
            Some(Statement::HiveCtas)
        );
        assert_eq!(statement("VACUUM \"d\".\"t\""), Some(Statement::Vacuum));
        assert_eq!(statement("GRANT x"), None);
    }
}
