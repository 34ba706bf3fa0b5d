//! Records to Parquet bytes: Silt's meta columns, then the dataset's columns
//! in schema order, zstd-compressed. Pure and deterministic: the same records
//! and schema give the same bytes.

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use silt_core::config::ParquetEncodings;
use silt_core::schema::{ColumnType, DatasetSchema, align};
use silt_core::{Cell, ChangeRecord, Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Field metadata marking a text column that holds JSON (nested values).
const TYPE_KEY: &str = "silt.type";
const JSON_TYPE: &str = "json";

/// Whether an Arrow field of a raw file holds JSON text.
fn is_json(field: &Field) -> bool {
    field.metadata().get(TYPE_KEY).map(String::as_str) == Some(JSON_TYPE)
}

/// The Arrow schema of a raw file for a dataset schema.
pub fn arrow_schema(schema: &DatasetSchema) -> Schema {
    let mut fields = vec![
        Field::new("_record_id", DataType::Utf8, false),
        Field::new("_op", DataType::Utf8, false),
        Field::new("_position", DataType::Utf8, false),
        Field::new(
            "_event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ];
    for c in &schema.columns {
        let dt = match c.ty {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::String | ColumnType::Json => DataType::Utf8,
        };
        let mut f = Field::new(&c.name, dt, true);
        if c.ty == ColumnType::Json {
            f = f.with_metadata(HashMap::from([(
                TYPE_KEY.to_string(),
                JSON_TYPE.to_string(),
            )]));
        }
        fields.push(f);
    }
    Schema::new(fields)
}

/// Encodes records (already sorted and checked against `schema`) as Parquet.
pub fn encode_parquet(
    schema: &DatasetSchema,
    records: &[&ChangeRecord],
    encodings: ParquetEncodings,
) -> Result<Vec<u8>> {
    let arrow = Arc::new(arrow_schema(schema));
    let n = records.len();
    let mut rid = StringBuilder::with_capacity(n, n * 32);
    let mut op = StringBuilder::with_capacity(n, n);
    let mut pos = StringBuilder::with_capacity(n, n * 20);
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    for r in records {
        rid.append_value(&r.record_id);
        op.append_value(r.op.code());
        pos.append_value(&r.position);
        ts.append_value(r.event_time_ms);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(rid.finish()),
        Arc::new(op.finish()),
        Arc::new(pos.finish()),
        Arc::new(ts.finish()),
    ];
    let mut builders: Vec<ColumnBuilder> = schema
        .columns
        .iter()
        .map(|c| ColumnBuilder::new(c.ty, n))
        .collect();
    let mut by_name: Vec<(&str, usize)> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    by_name.sort_unstable();
    let mut filled = vec![false; builders.len()];
    for r in records {
        filled.iter_mut().for_each(|f| *f = false);
        if let Some(row) = r.stored_image() {
            for (_, value, column) in align(row, &by_name) {
                if let Some(&i) = column {
                    builders[i].append(&value);
                    filled[i] = true;
                }
            }
        }
        for (b, _) in builders.iter_mut().zip(&filled).filter(|(_, f)| !**f) {
            b.append(&Cell::Null);
        }
    }
    columns.extend(builders.into_iter().map(ColumnBuilder::finish));
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // A fixed creator keeps bytes identical across parquet-rs upgrades.
        .set_created_by("silt".to_string());
    // Ids and positions are unique per row, so they never get a dictionary;
    // the other columns get one where their first rows repeat.
    for (field, column) in arrow.fields().iter().zip(&columns) {
        let path = ColumnPath::from(field.name().as_str());
        let unique_by_design = matches!(field.name().as_str(), "_record_id" | "_position");
        if unique_by_design || !repeats(column) {
            props = props.set_column_dictionary_enabled(path.clone(), false);
        }
        if !useful_min_max(field) {
            props = props.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        }
        if let Some(encoding) = value_encoding(field, encodings) {
            props = props.set_column_encoding(path, encoding);
        }
    }
    let props = props.build();
    let batch = RecordBatch::try_new(arrow.clone(), columns)
        .map_err(|e| Error::encoding(format!("arrow batch for {}", schema.dataset), e))?;
    let mut out = Vec::with_capacity(n * 64);
    let mut writer = ArrowWriter::try_new(&mut out, arrow, Some(props))
        .map_err(|e| Error::encoding("parquet writer", e))?;
    writer
        .write(&batch)
        .map_err(|e| Error::encoding("parquet write", e))?;
    writer
        .close()
        .map_err(|e| Error::encoding("parquet close", e))?;
    Ok(out)
}

/// Whether a column's minimum and maximum can help a reader skip data.
/// Not for record ids (hashes: every file spans nearly the whole range) nor
/// nested values (JSON text, whose order means nothing); for them the
/// writer's comparisons of every value were wasted, and those of JSON
/// text, which shares its first bytes (`[{"price_cents":`), long ones.
fn useful_min_max(field: &Field) -> bool {
    field.name() != "_record_id" && !is_json(field)
}

/// The encoding of a column's values outside a dictionary; `None` leaves
/// parquet-rs's PLAIN.
///
/// PLAIN writes each text value behind its 4-byte length, so zstd, the
/// largest part of landing, meets a length between every two values and
/// finds only short matches. The delta encodings put the lengths apart,
/// packed as differences, and the text in one run; integers (ids, amounts,
/// times) become small differences; positions, sorted within a file,
/// share most of their digits with the one before. On the shop's events
/// that took landing's instructions down 13% and raw files 5%.
fn value_encoding(field: &Field, encodings: ParquetEncodings) -> Option<Encoding> {
    if encodings == ParquetEncodings::Plain {
        return None;
    }
    match field.data_type() {
        DataType::Utf8 if field.name() == "_position" => Some(Encoding::DELTA_BYTE_ARRAY),
        DataType::Utf8 => Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
        DataType::Int64 | DataType::Timestamp(..) => Some(Encoding::DELTA_BINARY_PACKED),
        _ => None,
    }
}

/// Rows looked at to choose a column's encoding.
const SAMPLE_ROWS: usize = 512;

/// Whether a column's first rows hold each value four times on average or
/// more: then a dictionary is worth it.
///
/// parquet-rs builds a dictionary for every column unless told otherwise
/// and drops it only when it outgrows its page limit (1 MiB). A batch of
/// mostly distinct values (nested items, amounts, hashed e-mails) stays
/// under that limit, so every value was hashed and interned, and written
/// twice (dictionary page and indices), for files that came out larger
/// than plain values under zstd. Deciding from the data keeps the choice
/// deterministic: the same records give the same bytes.
fn repeats(column: &ArrayRef) -> bool {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
    fn few<T: Ord>(mut sample: Vec<T>) -> bool {
        let n = sample.len();
        sample.sort_unstable();
        sample.dedup();
        sample.len() * 4 <= n
    }
    let rows = column.len().min(SAMPLE_ROWS);
    let present = (0..rows).filter(|&i| column.is_valid(i));
    match column.data_type() {
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            few(present.map(|i| a.value(i)).collect())
        }
        DataType::Int64 => {
            let a = column.as_primitive::<Int64Type>();
            few(present.map(|i| a.value(i)).collect())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = column.as_primitive::<TimestampMillisecondType>();
            few(present.map(|i| a.value(i)).collect())
        }
        DataType::Float64 => {
            let a = column.as_primitive::<Float64Type>();
            few(present.map(|i| a.value(i).to_bits()).collect())
        }
        // Booleans are never dictionary-encoded; no other type is written.
        _ => true,
    }
}

/// One column being built; a value of another type than the column's is
/// stored as null (the schema check before encoding rejects those).
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    String(StringBuilder),
    Json(StringBuilder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType, n: usize) -> Self {
        match ty {
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(n)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(n)),
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(n)),
            ColumnType::String => Self::String(StringBuilder::with_capacity(n, n * 16)),
            ColumnType::Json => Self::Json(StringBuilder::with_capacity(n, n * 64)),
        }
    }

    fn append(&mut self, v: &Cell<'_>) {
        match (self, v) {
            (Self::Boolean(b), Cell::Bool(x)) => b.append_value(*x),
            (Self::Int64(b), Cell::Number(n)) => b.append_option(n.as_i64()),
            (Self::Float64(b), Cell::Number(n)) => b.append_option(n.as_f64()),
            (Self::String(b), Cell::Text(s)) => b.append_value(s),
            // Nested cells already hold their canonical JSON text.
            (Self::Json(b), Cell::Json(s)) => b.append_value(s),
            (Self::Boolean(b), _) => b.append_null(),
            (Self::Int64(b), _) => b.append_null(),
            (Self::Float64(b), _) => b.append_null(),
            (Self::String(b) | Self::Json(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Boolean(mut b) => Arc::new(b.finish()),
            Self::Int64(mut b) => Arc::new(b.finish()),
            Self::Float64(mut b) => Arc::new(b.finish()),
            Self::String(mut b) | Self::Json(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::{Value, json};
    use silt_core::Op;
    use silt_core::schema::evolve;

    fn rec(pos: &str, row: Value) -> ChangeRecord {
        ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![row["id"].clone()],
            None,
            row.as_object()
                .map(|m| silt_core::Row::from_map(m).unwrap()),
            pos.into(),
            1_000,
        )
    }

    #[test]
    fn encodes_every_type_deterministically() {
        let records = [
            rec(
                "1",
                json!({"id": 1, "flag": true, "price": 1.5, "name": "a", "items": [{"sku": "x"}]}),
            ),
            rec(
                "2",
                json!({"id": 2, "flag": null, "price": 2, "name": null}),
            ),
        ];
        let schema = evolve(&DatasetSchema::empty("s.p.t".parse().unwrap()), &records).schema;
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let a = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let b = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        assert_eq!(a, b);
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(a))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().unwrap();
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        let items = batch.column_by_name("items").unwrap();
        let items = items
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(items.value(0), r#"[{"sku":"x"}]"#);
        assert!(items.is_null(1));
        let price = batch
            .column_by_name("price")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(price.value(1), 2.0);
    }

    #[test]
    fn delta_and_plain_files_hold_the_same_values() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let records: Vec<ChangeRecord> = (0..300)
            .map(|i| {
                rec(
                    &format!("{:020}", 16_777_216 + i * 7),
                    json!({"id": i * 3 - 200, "note": format!("note {i}"), "items": [{"qty": i}], "gone": null}),
                )
            })
            .collect();
        let schema = evolve(&DatasetSchema::empty("s.p.t".parse().unwrap()), &records).schema;
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let read = |choice: ParquetEncodings| {
            let bytes = Bytes::from(encode_parquet(&schema, &refs, choice).unwrap());
            let reader = SerializedFileReader::new(bytes.clone()).unwrap();
            let encodings: Vec<(String, Vec<Encoding>)> = reader
                .metadata()
                .row_group(0)
                .columns()
                .iter()
                .map(|c| (c.column_path().string(), c.encodings().collect()))
                .collect();
            let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap();
            (batches, encodings)
        };
        let (delta, delta_encodings) = read(ParquetEncodings::Delta);
        let (plain, plain_encodings) = read(ParquetEncodings::Plain);
        assert_eq!(delta, plain);
        assert_eq!(delta[0].num_rows(), 300);
        let uses = |encodings: &[(String, Vec<Encoding>)], column: &str, e: Encoding| {
            encodings
                .iter()
                .any(|(c, es)| c == column && es.contains(&e))
        };
        for (column, e) in [
            ("_position", Encoding::DELTA_BYTE_ARRAY),
            ("_record_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
            ("note", Encoding::DELTA_LENGTH_BYTE_ARRAY),
            ("items", Encoding::DELTA_LENGTH_BYTE_ARRAY),
            ("id", Encoding::DELTA_BINARY_PACKED),
        ] {
            assert!(
                uses(&delta_encodings, column, e),
                "{column}: {delta_encodings:?}"
            );
        }
        let delta_kinds = [
            Encoding::DELTA_BYTE_ARRAY,
            Encoding::DELTA_LENGTH_BYTE_ARRAY,
            Encoding::DELTA_BINARY_PACKED,
        ];
        for (column, es) in &plain_encodings {
            assert!(
                !es.iter().any(|e| delta_kinds.contains(e)),
                "{column}: {es:?}"
            );
        }
    }

    #[test]
    fn min_and_max_only_where_a_reader_can_use_them() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let records: Vec<ChangeRecord> = (0..50)
            .map(|i| {
                rec(
                    &format!("{i:05}"),
                    json!({"id": i, "note": format!("n{i}"), "items": [{"qty": i}]}),
                )
            })
            .collect();
        let schema = evolve(&DatasetSchema::empty("s.p.t".parse().unwrap()), &records).schema;
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = Bytes::from(encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap());
        let reader = SerializedFileReader::new(bytes).unwrap();
        let with_stats: Vec<(String, bool)> = reader
            .metadata()
            .row_group(0)
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.statistics().is_some()))
            .collect();
        let expected: Vec<(String, bool)> = [
            ("_record_id", false),
            ("_op", true),
            ("_position", true),
            ("_event_time", true),
            ("id", true),
            ("items", false),
            ("note", true),
        ]
        .iter()
        .map(|(c, s)| (c.to_string(), *s))
        .collect();
        assert_eq!(with_stats, expected);
    }

    #[test]
    fn only_repeating_columns_get_a_dictionary() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let records: Vec<ChangeRecord> = (0..600)
            .map(|i| {
                let status = ["new", "paid", "sent"][i % 3];
                rec(
                    &format!("{i:05}"),
                    json!({"id": i, "status": status, "note": format!("n{i}")}),
                )
            })
            .collect();
        let schema = evolve(&DatasetSchema::empty("s.p.t".parse().unwrap()), &records).schema;
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let group = reader.metadata().row_group(0);
        let dictionary: Vec<(String, bool)> = group
            .columns()
            .iter()
            .map(|c| {
                (
                    c.column_path().string(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect();
        let with = |name: &str| dictionary.iter().any(|(n, d)| n == name && *d);
        // One event time and three statuses repeat; ids, positions and notes do not.
        assert!(
            with("_op") && with("_event_time") && with("status"),
            "{dictionary:?}"
        );
        for unique in ["_record_id", "_position", "id", "note"] {
            assert!(!with(unique), "{unique} has a dictionary: {dictionary:?}");
        }
    }
}
