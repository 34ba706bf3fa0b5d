//! Records to Parquet bytes: Silt's meta columns, then the dataset's columns
//! in schema order, zstd-compressed, written by parquet-rs's `ArrowWriter`.
//! Pure and deterministic: the same records and schema give the same bytes.
//!
//! Landing fills one Arrow builder per column as the schema check accepts
//! each record ([`Gather`]), so each row is read once; the writer then
//! chooses pages, dictionaries, statistics and page indexes as it does for
//! every other parquet-rs user, which is what Athena/Trino, Spark, pyarrow,
//! DuckDB and Polars are tested against.

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int64Builder, StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use silt_core::config::ParquetEncodings;
use silt_core::lake::schema::{
    Column as SchemaColumn, ColumnType, DatasetSchema, NO_COLUMN, align,
};
use silt_core::lake::types::TypedValue;
use silt_core::{Cell, ChangeRecord, Error, Result, Row};
use std::collections::HashMap;
use std::sync::Arc;

/// Field metadata marking a text column that holds JSON (nested values).
const TYPE_KEY: &str = "silt.type";
const JSON_TYPE: &str = "json";

/// zstd's level for every page: its fastest positive one. Raw files are
/// written once per batch and read a few times, by scans that are bound by
/// requests more than bytes.
const ZSTD_LEVEL: i32 = 1;

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
        let mut f = Field::new(&c.name, data_type(c.ty), true);
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

/// The Arrow type of a column: parquet-rs writes each with its Parquet
/// logical type (DATE, TIMESTAMP(MICROS, UTC), DECIMAL), which Athena,
/// DataFusion, pyarrow and DuckDB read as the same type.
pub fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String | ColumnType::Json => DataType::Utf8,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        ColumnType::Binary => DataType::Binary,
    }
}

/// Encodes records (already sorted and checked against `schema`) as Parquet.
pub fn encode_parquet(
    schema: &DatasetSchema,
    records: &[&ChangeRecord],
    encodings: ParquetEncodings,
) -> Result<Vec<u8>> {
    encode_gathered(schema, gather(schema, records), encodings)
}

/// Encodes the columns gathered for `schema` (see [`Gather`]) as Parquet.
pub(crate) fn encode_gathered(
    schema: &DatasetSchema,
    gathered: Gather,
    encodings: ParquetEncodings,
) -> Result<Vec<u8>> {
    let pq = |what: &'static str| {
        let what = format!("parquet {what} for {}", schema.dataset);
        move |e: parquet::errors::ParquetError| Error::encoding(what, e)
    };
    let arrow: SchemaRef = Arc::new(arrow_schema(schema));
    let batch = RecordBatch::try_new(arrow.clone(), gathered.finish(schema))
        .map_err(|e| Error::encoding(format!("arrow batch for {}", schema.dataset), e))?;
    let mut writer = ArrowWriter::try_new(
        Vec::with_capacity(batch.get_array_memory_size() / 2),
        arrow.clone(),
        Some(writer_properties(&arrow, encodings)),
    )
    .map_err(pq("writer"))?;
    writer.write(&batch).map_err(pq("row group"))?;
    writer.into_inner().map_err(pq("footer"))
}

/// How a raw file is written: parquet-rs's defaults (dictionary, falling
/// back to PLAIN past its page limit; statistics and page indexes per page)
/// except where a column's nature says otherwise.
fn writer_properties(arrow: &Schema, encodings: ParquetEncodings) -> WriterProperties {
    let mut props = WriterProperties::builder()
        // A fixed creator keeps bytes identical across parquet-rs upgrades.
        .set_created_by("silt".to_string())
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
        ));
    for field in arrow.fields() {
        let path = ColumnPath::new(vec![field.name().clone()]);
        // Record ids and positions are unique per row: a dictionary of them
        // is as large as the column and every value is hashed for nothing.
        if matches!(field.name().as_str(), "_record_id" | "_position") {
            props = props.set_column_dictionary_enabled(path.clone(), false);
        }
        // A minimum and maximum of hashes (every file spans nearly the whole
        // range) or of JSON text (whose order means nothing) never let a
        // reader skip anything.
        if field.name() == "_record_id" || is_json(field) {
            props = props.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        }
        if let Some(e) = delta_encoding(field, encodings) {
            props = props.set_column_encoding(path, e);
        }
    }
    props.build()
}

/// The delta encoding of a column's values outside its dictionary, when
/// the project asks for them (`landing.encodings = "delta"`); `None` for
/// PLAIN, which every reader reads.
fn delta_encoding(field: &Field, encodings: ParquetEncodings) -> Option<Encoding> {
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

/// Walks the records once, appending each cell to its column (see
/// [`Gather`]): the columns of a file of `records`, outside landing.
fn gather(schema: &DatasetSchema, records: &[&ChangeRecord]) -> Gather {
    let mut by_name: Vec<(&str, u32)> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i as u32))
        .collect();
    by_name.sort_unstable();
    let mut gathered = Gather::new(records.len());
    let mut cell_columns = Vec::new();
    for r in records {
        let image = r.stored_image();
        cell_columns.clear();
        if let Some(image) = image {
            cell_columns.extend(
                align(image, &by_name).map(|(_, _, column)| column.copied().unwrap_or(NO_COLUMN)),
            );
        }
        gathered.push(r, image, &schema.columns, &cell_columns);
    }
    gathered
}

/// One data column's builder.
enum Builder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Text(StringBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder),
    Binary(BinaryBuilder),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::String => Self::Text(StringBuilder::with_capacity(rows, rows * 16)),
            ColumnType::Json => Self::Text(StringBuilder::with_capacity(rows, rows * 64)),
            ColumnType::Date => Self::Date(Date32Builder::with_capacity(rows)),
            ColumnType::Timestamp => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            // Precision and scale were checked when the type was read
            // (1..=38, scale <= precision), which is all Arrow asks.
            ColumnType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(precision, scale as i8)
                    .unwrap_or_else(|_| Decimal128Builder::with_capacity(rows)),
            ),
            ColumnType::Binary => Self::Binary(BinaryBuilder::with_capacity(rows, rows * 16)),
        }
    }

    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Self::Boolean(b) => b.len(),
            Self::Int64(b) => b.len(),
            Self::Float64(b) => b.len(),
            Self::Text(b) => b.len(),
            Self::Date(b) => b.len(),
            Self::Timestamp(b) => b.len(),
            Self::Decimal(b) => b.len(),
            Self::Binary(b) => b.len(),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Self::Boolean(b) => b.append_nulls(n),
            Self::Int64(b) => b.append_nulls(n),
            Self::Float64(b) => b.append_nulls(n),
            Self::Text(b) => b.append_nulls(n),
            Self::Date(b) => b.append_nulls(n),
            Self::Timestamp(b) => b.append_nulls(n),
            Self::Decimal(b) => b.append_nulls(n),
            Self::Binary(b) => b.append_nulls(n),
        }
    }

    /// Appends a cell of a column of type `ty`, read as the schema check
    /// read it; a value that is not of the type is stored as null (the
    /// check quarantines those records before they get here).
    fn append(&mut self, ty: ColumnType, cell: &Cell<'_>) {
        match (self, ty.read(cell)) {
            (Self::Boolean(b), Some(TypedValue::Bool(x))) => b.append_value(x),
            (Self::Int64(b), Some(TypedValue::Int(x))) => b.append_value(x),
            (Self::Float64(b), Some(TypedValue::Float(x))) => b.append_value(x),
            (Self::Text(b), Some(TypedValue::Text(x))) => b.append_value(x),
            (Self::Date(b), Some(TypedValue::Date(x))) => b.append_value(x),
            (Self::Timestamp(b), Some(TypedValue::Micros(x))) => b.append_value(x),
            (Self::Decimal(b), Some(TypedValue::Decimal(x))) => b.append_value(x),
            (Self::Binary(b), Some(TypedValue::Bytes(x))) => b.append_value(x),
            (b, _) => b.append_nulls(1),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// One file's column builders, filled a record at a time: landing fills
/// them as the schema check accepts each record
/// ([`silt_core::lake::schema::evolve_with`]), so each row is read once.
pub(crate) struct Gather {
    /// Records pushed so far.
    rows: usize,
    /// Records expected: room each column's builder starts with.
    expected: usize,
    rid: StringBuilder,
    op: StringBuilder,
    pos: StringBuilder,
    ts: TimestampMillisecondBuilder,
    /// By the column's index in the schema, once a row had a cell for it.
    data: Vec<Option<(ColumnType, Builder)>>,
}

impl Gather {
    /// Builders for about `rows` records.
    pub(crate) fn new(rows: usize) -> Self {
        Self {
            rows: 0,
            expected: rows,
            rid: StringBuilder::with_capacity(rows, rows * 32),
            op: StringBuilder::with_capacity(rows, rows),
            pos: StringBuilder::with_capacity(rows, rows * 20),
            ts: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            data: Vec::new(),
        }
    }

    /// Appends a record whose image's cells belong to the columns
    /// `cell_columns` names (indexes into `columns`, or [`NO_COLUMN`]).
    pub(crate) fn push(
        &mut self,
        r: &ChangeRecord,
        image: Option<&Row>,
        columns: &[SchemaColumn],
        cell_columns: &[u32],
    ) {
        let row = self.rows;
        self.rows += 1;
        self.rid.append_value(&r.record_id);
        self.op.append_value(r.op.code());
        self.pos.append_value(&r.position);
        self.ts.append_value(r.event_time_ms);
        let Some(image) = image else {
            return;
        };
        for ((_, cell), &c) in image.iter().zip(cell_columns) {
            let Some(column) = columns.get(c as usize) else {
                continue;
            };
            let c = c as usize;
            if self.data.len() <= c {
                self.data.resize_with(c + 1, || None);
            }
            let expected = self.expected;
            let Some((ty, builder)) = self
                .data
                .get_mut(c)
                .map(|d| d.get_or_insert_with(|| (column.ty, Builder::new(column.ty, expected))))
            else {
                continue;
            };
            // Rows since this column's last cell were null in it.
            if builder.len() < row {
                builder.append_nulls(row - builder.len());
            }
            builder.append(*ty, &cell);
        }
    }

    /// The meta columns, then one column per column of `schema` (which
    /// holds every column a pushed record had), in its order.
    fn finish(mut self, schema: &DatasetSchema) -> Vec<ArrayRef> {
        let n = self.rows;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.rid.finish()),
            Arc::new(self.op.finish()),
            Arc::new(self.pos.finish()),
            Arc::new(self.ts.finish()),
        ];
        for (i, c) in schema.columns.iter().enumerate() {
            let mut builder = match self.data.get_mut(i).and_then(Option::take) {
                Some((_, builder)) => builder,
                None => Builder::new(c.ty, 0),
            };
            if builder.len() < n {
                builder.append_nulls(n - builder.len());
            }
            arrays.push(builder.finish());
        }
        arrays
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    use arrow::record_batch::RecordBatch;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use silt_core::Op;
    use silt_core::lake::schema::Column as SchemaColumn;
    use silt_core::lake::schema::evolve;

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
        // The columns without a dictionary; the others keep theirs, and
        // fall back to their delta encoding only past its page limit.
        for (column, e) in [
            ("_position", Encoding::DELTA_BYTE_ARRAY),
            ("_record_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
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
    fn ids_and_positions_get_no_dictionary_and_repeating_columns_do() {
        let records: Vec<ChangeRecord> = (0..600)
            .map(|i| {
                let status = ["new", "paid", "sent"][i % 3];
                rec(&format!("{i:05}"), json!({"id": i, "status": status}))
            })
            .collect();
        let schema = evolve(&DatasetSchema::empty("s.p.t".parse().unwrap()), &records).schema;
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Plain).unwrap();
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
        assert!(with("_op") && with("status"), "{dictionary:?}");
        assert!(!with("_record_id") && !with("_position"), "{dictionary:?}");
    }

    fn read_all(bytes: Vec<u8>) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().unwrap();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// The integer column `n` and the text column `s` of a batch.
    fn n_and_s(batch: &RecordBatch) -> (&arrow::array::Int64Array, &arrow::array::StringArray) {
        let n = batch
            .column_by_name("n")
            .unwrap()
            .as_primitive::<Int64Type>();
        let s = batch.column_by_name("s").unwrap().as_string::<i32>();
        (n, s)
    }

    fn typed(columns: &[(&str, ColumnType)]) -> DatasetSchema {
        DatasetSchema {
            dataset: "s.p.t".parse().unwrap(),
            version: 1,
            widenings: 0,
            columns: columns
                .iter()
                .map(|(n, ty)| SchemaColumn {
                    name: n.to_string(),
                    ty: *ty,
                })
                .collect(),
        }
    }

    /// One generated row: each column null, absent or a value.
    type GenRow = (
        Option<Option<i64>>,
        Option<Option<f64>>,
        Option<Option<bool>>,
        Option<Option<String>>,
        Option<Option<Vec<i64>>>,
    );

    fn cell<T: serde::Serialize>(v: &Option<Option<T>>) -> Option<Value> {
        v.as_ref().map(|v| json!(v))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the values, parquet-rs reads back exactly what was
        /// written, in both encodings, under the schema readers are given,
        /// with bounds that hold every value.
        #[test]
        fn any_rows_read_back_as_written(
            rows in prop::collection::vec(
                (
                    prop::option::of(prop::option::of(prop_oneof![any::<i64>(), -3i64..3])),
                    prop::option::of(prop::option::of(
                        prop_oneof![any::<f64>().prop_filter("finite", |f| f.is_finite()), Just(-0.0), Just(0.0)],
                    )),
                    prop::option::of(prop::option::of(any::<bool>())),
                    prop::option::of(prop::option::of(prop_oneof!["[a-c]{0,3}", ".{0,90}"])),
                    prop::option::of(prop::option::of(prop::collection::vec(any::<i64>(), 0..4))),
                ),
                1..300,
            ),
            repeat_status in any::<bool>(),
        ) {
            let schema = typed(&[
                ("b", ColumnType::Boolean),
                ("f", ColumnType::Float64),
                ("i", ColumnType::Int64),
                ("j", ColumnType::Json),
                ("s", ColumnType::String),
            ]);
            let records: Vec<ChangeRecord> = rows
                .iter()
                .enumerate()
                .map(|(n, (i, f, b, s, j)): (usize, &GenRow)| {
                    let mut m = serde_json::Map::new();
                    m.insert("id".into(), json!(n));
                    for (k, v) in [("i", cell(i)), ("f", cell(f)), ("b", cell(b)), ("s", cell(s)), ("j", cell(j))] {
                        if let Some(v) = v {
                            m.insert(k.into(), v);
                        }
                    }
                    let pos = if repeat_status { format!("{:05}", n / 7) } else { format!("{n:05}") };
                    rec(&pos, Value::Object(m))
                })
                .collect();
            let refs: Vec<&ChangeRecord> = records.iter().collect();
            for choice in [ParquetEncodings::Delta, ParquetEncodings::Plain] {
                let bytes = encode_parquet(&schema, &refs, choice).unwrap();
                let batch = read_all(bytes.clone());
                let read_schema = batch.schema();
                prop_assert_eq!(read_schema.as_ref(), &arrow_schema(&schema));
                prop_assert_eq!(batch.num_rows(), rows.len());
                let ints = batch.column_by_name("i").unwrap().as_primitive::<Int64Type>();
                let floats = batch.column_by_name("f").unwrap().as_primitive::<Float64Type>();
                let bools = batch.column_by_name("b").unwrap().as_boolean();
                let texts = batch.column_by_name("s").unwrap().as_string::<i32>();
                let jsons = batch.column_by_name("j").unwrap().as_string::<i32>();
                let positions = batch.column_by_name("_position").unwrap().as_string::<i32>();
                for (n, (i, f, b, s, j)) in rows.iter().enumerate() {
                    prop_assert_eq!(ints.is_valid(n).then(|| ints.value(n)), i.flatten());
                    prop_assert_eq!(
                        floats.is_valid(n).then(|| floats.value(n).to_bits()),
                        f.flatten().map(f64::to_bits)
                    );
                    prop_assert_eq!(bools.is_valid(n).then(|| bools.value(n)), b.flatten());
                    let s = s.clone().flatten();
                    prop_assert_eq!(texts.is_valid(n).then(|| texts.value(n)), s.as_deref());
                    let j = j.clone().flatten().map(|j| serde_json::to_string(&j).unwrap());
                    prop_assert_eq!(jsons.is_valid(n).then(|| jsons.value(n)), j.as_deref());
                    prop_assert_eq!(positions.value(n), records[n].position.as_str());
                }
                let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
                let group = reader.metadata().row_group(0);
                for c in group.columns() {
                    let name = c.column_path().string();
                    match c.statistics() {
                        Some(Statistics::Int64(st)) if name == "i" => {
                            let present: Vec<i64> = rows.iter().filter_map(|r| r.0.flatten()).collect();
                            prop_assert_eq!(st.min_opt(), present.iter().min());
                            prop_assert_eq!(st.max_opt(), present.iter().max());
                            prop_assert_eq!(st.null_count_opt(), Some((rows.len() - present.len()) as u64));
                        }
                        Some(Statistics::Double(st)) if name == "f" => {
                            let present: Vec<f64> = rows.iter().filter_map(|r| r.1.flatten()).collect();
                            if let (Some(min), Some(max)) = (st.min_opt(), st.max_opt()) {
                                prop_assert!(present.iter().all(|v| min <= v && v <= max));
                                // The format's rule: a zero minimum is -0.0, a zero maximum +0.0.
                                prop_assert!(*min != 0.0 || min.is_sign_negative());
                                prop_assert!(*max != 0.0 || max.is_sign_positive());
                            } else {
                                prop_assert!(present.is_empty());
                            }
                        }
                        Some(Statistics::ByteArray(st)) if name == "s" => {
                            let present: Vec<&[u8]> = rows.iter().filter_map(|r| r.3.as_ref()?.as_deref()).map(str::as_bytes).collect();
                            if let (Some(min), Some(max)) = (st.min_opt(), st.max_opt()) {
                                prop_assert!(present.iter().all(|v| min.data() <= *v && *v <= max.data()));
                                prop_assert!(std::str::from_utf8(min.data()).is_ok() && std::str::from_utf8(max.data()).is_ok());
                                prop_assert!(!st.min_is_exact() || present.contains(&min.data()));
                                prop_assert!(!st.max_is_exact() || present.contains(&max.data()));
                            } else {
                                prop_assert!(present.is_empty());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Any JSON value a generated cell may hold: each type a column can
    /// take, and null.
    fn any_cell() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            prop_oneof![Just(0.5f64), Just(-2.25)].prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::from),
            prop::collection::vec(0i64..3, 0..3).prop_map(|v| json!(v)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Files filled as the schema check accepts each record hold the
        /// bytes a file of the accepted records encodes to on its own:
        /// columns added on the way (in any row), cells of columns not yet
        /// typed, conflicting records left out, a schema that had columns.
        #[test]
        fn files_filled_during_the_check_are_the_files_of_their_records(
            rows in prop::collection::vec(
                prop::collection::btree_map("[a-e]", any_cell(), 0..5),
                0..40,
            ),
            known in prop::sample::subsequence(vec![("b", ColumnType::Int64), ("d", ColumnType::String)], 0..=2),
        ) {
            let records: Vec<ChangeRecord> = rows
                .iter()
                .enumerate()
                .map(|(n, cells)| {
                    let m: serde_json::Map<String, Value> =
                        cells.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    rec(&format!("{n:05}"), Value::Object(m))
                })
                .collect();
            let refs: Vec<&ChangeRecord> = records.iter().collect();
            let mut start = typed(&known);
            start.version = u32::from(!known.is_empty());
            let mut accepted = Vec::new();
            let evo = silt_core::lake::schema::evolve_with(&start, &[], &refs, |a| accepted.push(refs[a.index]));
            prop_assert_eq!(accepted.len() + evo.conflicts.len(), refs.len());
            for choice in [ParquetEncodings::Delta, ParquetEncodings::Plain] {
                let alone = encode_parquet(&evo.schema, &accepted, choice).unwrap();
                let mut again = Gather::new(0);
                silt_core::lake::schema::evolve_with(&start, &[], &refs, |a| {
                    again.push(refs[a.index], a.image, a.columns, a.cell_columns);
                });
                let during = encode_gathered(&evo.schema, again, choice).unwrap();
                prop_assert!(alone == during, "{} bytes alone, {} filled during the check", alone.len(), during.len());
            }
        }
    }

    #[test]
    fn large_columns_are_split_into_pages() {
        let schema = typed(&[
            ("k", ColumnType::String),
            ("n", ColumnType::Int64),
            ("s", ColumnType::String),
        ]);
        let records: Vec<ChangeRecord> = (0..25_000)
            .map(|i| {
                // `k` repeats (a dictionary) and changes every 5,000 rows.
                let k = format!("k{}", i / 5000);
                let row = if i % 5 == 0 {
                    json!({"id": i, "k": k, "n": null})
                } else {
                    json!({"id": i, "k": k, "n": i * 3, "s": format!("{i:0>200}")})
                };
                rec(&format!("{i:06}"), row)
            })
            .collect();
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
            .with_page_index()
            .build();
        let reader =
            SerializedFileReader::new_with_options(Bytes::from(bytes.clone()), options).unwrap();
        let pages: Vec<usize> = reader.metadata().offset_index().unwrap()[0]
            .iter()
            .map(|c| c.page_locations().len())
            .collect();
        // Columns: _record_id, _op, _position, _event_time, k, n, s. More
        // than 20,000 rows split every column; 4 MB of text splits `s` by size.
        assert!(pages.iter().all(|p| *p >= 2), "{pages:?}");
        assert!(pages[6] >= 4, "{pages:?}");
        // Each page of `k` is bounded by the values it holds, not the chunk's.
        let locations = reader.metadata().offset_index().unwrap()[0][4].page_locations();
        let index = &reader.metadata().column_index().unwrap()[0][4];
        let parquet::file::page_index::column_index::ColumnIndexMetaData::BYTE_ARRAY(k) = index
        else {
            panic!("{index:?}");
        };
        for (p, at) in locations.iter().enumerate() {
            let first = at.first_row_index as usize;
            let last = locations
                .get(p + 1)
                .map_or(25_000, |next| next.first_row_index as usize)
                - 1;
            let bound = |i: usize| format!("k{}", i / 5000).into_bytes();
            assert_eq!(k.min_value(p).unwrap(), bound(first).as_slice());
            assert_eq!(k.max_value(p).unwrap(), bound(last).as_slice());
        }
        let batch = read_all(bytes);
        let (n, s) = n_and_s(&batch);
        for i in 0..25_000usize {
            if i % 5 == 0 {
                assert!(n.is_null(i) && s.is_null(i));
            } else {
                assert_eq!(n.value(i), i as i64 * 3);
                assert_eq!(s.value(i), format!("{i:0>200}"));
            }
        }
    }

    #[test]
    fn a_column_of_nulls_reads_back_as_nulls() {
        let schema = typed(&[("n", ColumnType::Int64), ("s", ColumnType::String)]);
        let records: Vec<ChangeRecord> = (0..10)
            .map(|i| rec(&format!("{i:05}"), json!({"id": i, "n": null})))
            .collect();
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let batch = read_all(bytes);
        let (n, s) = n_and_s(&batch);
        assert_eq!((n.null_count(), s.null_count()), (10, 10));
    }
}
