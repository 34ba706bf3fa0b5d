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
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use silt_core::schema::{ColumnType, DatasetSchema, align};
use silt_core::{Cell, ChangeRecord, Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

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
                "silt.type".to_string(),
                "json".to_string(),
            )]));
        }
        fields.push(f);
    }
    Schema::new(fields)
}

/// Encodes records (already sorted and checked against `schema`) as Parquet.
pub fn encode_parquet(schema: &DatasetSchema, records: &[&ChangeRecord]) -> Result<Vec<u8>> {
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
    let batch = RecordBatch::try_new(arrow.clone(), columns)
        .map_err(|e| Error::encoding(format!("arrow batch for {}", schema.dataset), e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // A fixed creator keeps bytes identical across parquet-rs upgrades.
        .set_created_by("silt".to_string())
        // Ids and positions are unique per row: a dictionary only costs
        // hashing every value before the writer gives up on it.
        .set_column_dictionary_enabled(ColumnPath::from("_record_id"), false)
        .set_column_dictionary_enabled(ColumnPath::from("_position"), false)
        .build();
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
        let a = encode_parquet(&schema, &refs).unwrap();
        let b = encode_parquet(&schema, &refs).unwrap();
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
}
