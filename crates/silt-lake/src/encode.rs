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
use serde_json::Value;
use silt_core::schema::{ColumnType, DatasetSchema};
use silt_core::{ChangeRecord, Error, Result};
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
    for c in &schema.columns {
        let name = c.name.as_str();
        let array: ArrayRef = match c.ty {
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                records
                    .iter()
                    .for_each(|r| b.append_option(cell(r, name).and_then(Value::as_bool)));
                Arc::new(b.finish())
            }
            ColumnType::Int64 => {
                let mut b = Int64Builder::with_capacity(n);
                records
                    .iter()
                    .for_each(|r| b.append_option(cell(r, name).and_then(Value::as_i64)));
                Arc::new(b.finish())
            }
            ColumnType::Float64 => {
                let mut b = Float64Builder::with_capacity(n);
                records
                    .iter()
                    .for_each(|r| b.append_option(cell(r, name).and_then(Value::as_f64)));
                Arc::new(b.finish())
            }
            ColumnType::String => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                records
                    .iter()
                    .for_each(|r| b.append_option(cell(r, name).and_then(Value::as_str)));
                Arc::new(b.finish())
            }
            ColumnType::Json => {
                let mut b = StringBuilder::with_capacity(n, n * 64);
                records
                    .iter()
                    .for_each(|r| b.append_option(cell(r, name).map(Value::to_string)));
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    let batch = RecordBatch::try_new(arrow.clone(), columns)
        .map_err(|e| Error::encoding(format!("arrow batch for {}", schema.dataset), e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // A fixed creator keeps bytes identical across parquet-rs upgrades.
        .set_created_by("silt".to_string())
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

fn cell<'r>(r: &'r ChangeRecord, name: &str) -> Option<&'r Value> {
    r.stored_image()
        .and_then(|row| row.get(name))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::json;
    use silt_core::Op;
    use silt_core::schema::evolve;

    fn rec(pos: &str, row: Value) -> ChangeRecord {
        ChangeRecord::new(
            "s.p.t".parse().unwrap(),
            Op::Create,
            vec![row["id"].clone()],
            None,
            row.as_object().cloned(),
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
