//! Records to Parquet bytes: Silt's meta columns, then the dataset's columns
//! in schema order, zstd-compressed. Pure and deterministic: the same records
//! and schema give the same bytes.
//!
//! Values go from the rows straight into one buffer per column and from
//! there into pages ([`crate::pages`] holds the encodings); parquet-rs
//! writes the page headers, the footer and the Arrow schema beside it, so
//! readers see the same schema, types and metadata as from its ArrowWriter.

use crate::pages;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use silt_core::config::ParquetEncodings;
use silt_core::schema::{Column as SchemaColumn, ColumnType, DatasetSchema, NO_COLUMN, align};
use silt_core::{Cell, ChangeRecord, Error, Result, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Field metadata marking a text column that holds JSON (nested values).
const TYPE_KEY: &str = "silt.type";
const JSON_TYPE: &str = "json";

/// zstd's level for every page: its fastest positive one.
const ZSTD_LEVEL: i32 = 1;
/// A data page ends at this many rows or bytes of values, whichever comes
/// first (parquet-rs's defaults, which readers are tuned for).
const PAGE_ROWS: usize = 20_000;
const PAGE_BYTES: usize = 1024 * 1024;
/// A dictionary larger than this (its values, plainly encoded) is dropped
/// for the column's own encoding (parquet-rs's default limit).
const DICTIONARY_BYTES: usize = 1024 * 1024;
/// Distinct values a dictionary looks up by a linear search before it
/// switches to a hash map.
const FEW_ENTRIES: usize = 16;
/// Longest text kept whole as a minimum or maximum; longer ones are cut to
/// a bound (parquet-rs's default for statistics and page indexes).
const STATISTICS_BYTES: usize = 64;

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
    encode_columns(schema, gather(schema, records), encodings)
}

/// Encodes columns gathered for `schema` (see [`Gather`]) as Parquet.
pub(crate) fn encode_columns(
    schema: &DatasetSchema,
    columns: Vec<Column>,
    encodings: ParquetEncodings,
) -> Result<Vec<u8>> {
    let pq = |what: &str| {
        let what = format!("parquet {what} for {}", schema.dataset);
        move |e: parquet::errors::ParquetError| Error::encoding(what, e)
    };
    let rows = columns.first().map_or(0, |c| c.values.len());
    let arrow = arrow_schema(schema);
    let descriptor = ArrowSchemaConverter::new()
        .convert(&arrow)
        .map_err(pq("schema"))?;

    // Compression, encodings and statistics are each column chunk's own
    // (`write_chunk`); the file's properties hold the creator and schema.
    let mut props = WriterProperties::builder()
        // A fixed creator keeps bytes identical across parquet-rs upgrades.
        .set_created_by("silt".to_string())
        .build();
    add_encoded_arrow_schema_to_metadata(&arrow, &mut props);
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)
        .map_err(|e| Error::encoding("zstd compressor", e))?;
    let mut out = Vec::with_capacity(rows * 64);
    let mut writer =
        SerializedFileWriter::new(&mut out, descriptor.root_schema_ptr(), Arc::new(props))
            .map_err(pq("writer"))?;
    let mut group = writer.next_row_group().map_err(pq("row group"))?;
    for (i, (field, column)) in arrow.fields().iter().zip(&columns).enumerate() {
        let plan = Plan::for_column(field, column, encodings);
        let (chunk, close) = write_chunk(descriptor.column(i), column, &plan, &mut zstd)
            .map_err(pq(&format!("column {}", field.name())))?;
        group
            .append_column(&Bytes::from(chunk), close)
            .map_err(pq("column chunk"))?;
    }
    group.close().map_err(pq("row group"))?;
    writer.close().map_err(pq("footer"))?;
    Ok(out)
}

/// One column's values, in row order, nulls left out.
enum Values {
    Boolean(Vec<bool>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    /// Text (and JSON text) back to back; `ends[i]` is where value `i` ends.
    Text {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
}

impl Values {
    fn new(ty: ColumnType, n: usize) -> Self {
        match ty {
            ColumnType::Boolean => Self::Boolean(Vec::with_capacity(n)),
            ColumnType::Int64 => Self::Int64(Vec::with_capacity(n)),
            ColumnType::Float64 => Self::Float64(Vec::with_capacity(n)),
            ColumnType::String => Self::text(n, 16),
            ColumnType::Json => Self::text(n, 64),
        }
    }

    fn text(n: usize, bytes_each: usize) -> Self {
        Self::Text {
            data: Vec::with_capacity(n * bytes_each),
            ends: Vec::with_capacity(n),
        }
    }

    fn push_text(&mut self, s: &str) {
        if let Self::Text { data, ends } = self {
            data.extend_from_slice(s.as_bytes());
            ends.push(data.len());
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Boolean(v) => v.len(),
            Self::Int64(v) => v.len(),
            Self::Float64(v) => v.len(),
            Self::Text { ends, .. } => ends.len(),
        }
    }

    /// Where values `from..to` of a text column lie in its data.
    fn text_span(ends: &[usize], from: usize, to: usize) -> std::ops::Range<usize> {
        let at = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
        at(from)..at(to)
    }

    /// Value `i` of a text column.
    fn text_at<'a>(data: &'a [u8], ends: &[usize], i: usize) -> &'a [u8] {
        &data[Self::text_span(ends, i, i + 1)]
    }

    /// Bytes values `from..to` take, plainly encoded (for page sizes).
    fn plain_bytes(&self, from: usize, to: usize) -> usize {
        match self {
            Self::Boolean(_) => (to - from).div_ceil(8),
            Self::Int64(_) | Self::Float64(_) => (to - from) * 8,
            Self::Text { ends, .. } => Self::text_span(ends, from, to).len() + 4 * (to - from),
        }
    }
}

/// A column gathered from the records.
pub(crate) struct Column {
    values: Values,
    /// 1 where a row has a value, 0 where it is null; `None` for the meta
    /// columns, which are never null.
    levels: Option<Vec<u32>>,
}

/// Walks the records once, appending each cell to its column (see
/// [`Gather`]): the columns of a file of `records`, outside landing.
fn gather(schema: &DatasetSchema, records: &[&ChangeRecord]) -> Vec<Column> {
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
    gathered.finish(schema)
}

/// One file's column buffers, filled a record at a time: landing fills
/// them as the schema check accepts each record
/// ([`silt_core::schema::evolve_with`]), so each row is read once.
pub(crate) struct Gather {
    /// Records pushed so far.
    rows: usize,
    /// Records expected: room each column's buffers start with.
    expected: usize,
    rid: Values,
    op: Values,
    pos: Values,
    ts: Vec<i64>,
    /// By the column's index in the schema, once a row had a cell for it:
    /// its type, its values, and one level per row up to that row's.
    data: Vec<Option<(ColumnType, Values, Vec<u32>)>>,
}

impl Gather {
    /// Buffers for about `rows` records.
    pub(crate) fn new(rows: usize) -> Self {
        Self {
            rows: 0,
            expected: rows,
            rid: Values::text(rows, 32),
            op: Values::text(rows, 1),
            pos: Values::text(rows, 20),
            ts: Vec::with_capacity(rows),
            data: Vec::new(),
        }
    }

    /// Appends a record whose image's cells belong to the columns
    /// `cell_columns` names (indexes into `columns`, or [`NO_COLUMN`]). A
    /// value of another type than its column's is stored as null (the
    /// schema check quarantines those records before they get here).
    pub(crate) fn push(
        &mut self,
        r: &ChangeRecord,
        image: Option<&Row>,
        columns: &[SchemaColumn],
        cell_columns: &[u32],
    ) {
        let row = self.rows;
        self.rows += 1;
        self.rid.push_text(&r.record_id);
        self.op.push_text(r.op.code());
        self.pos.push_text(&r.position);
        self.ts.push(r.event_time_ms);
        let Some(image) = image else {
            return;
        };
        let expected = self.expected;
        for ((_, value), &c) in image.iter().zip(cell_columns) {
            let Some(column) = columns.get(c as usize) else {
                continue;
            };
            let c = c as usize;
            if self.data.len() <= c {
                self.data.resize_with(c + 1, || None);
            }
            let Some((ty, values, levels)) = self.data.get_mut(c).map(|d| {
                d.get_or_insert_with(|| {
                    let ty = column.ty;
                    (ty, Values::new(ty, expected), Vec::with_capacity(expected))
                })
            }) else {
                continue;
            };
            let stored = match (*ty, values, &value) {
                (ColumnType::Boolean, Values::Boolean(v), Cell::Bool(x)) => {
                    v.push(*x);
                    true
                }
                (ColumnType::Int64, Values::Int64(v), Cell::Number(x)) => {
                    x.as_i64().map(|x| v.push(x)).is_some()
                }
                (ColumnType::Float64, Values::Float64(v), Cell::Number(x)) => {
                    x.as_f64().map(|x| v.push(x)).is_some()
                }
                (ColumnType::String, v, Cell::Text(s)) | (ColumnType::Json, v, Cell::Json(s)) => {
                    v.push_text(s);
                    true
                }
                _ => false,
            };
            // Rows since this column's last cell were null in it.
            if levels.len() < row {
                levels.resize(row, 0);
            }
            levels.push(u32::from(stored));
        }
    }

    /// The meta columns, then one column per column of `schema` (which
    /// holds every column a pushed record had), in its order.
    pub(crate) fn finish(mut self, schema: &DatasetSchema) -> Vec<Column> {
        let n = self.rows;
        let mut columns = Vec::with_capacity(4 + schema.columns.len());
        for values in [self.rid, self.op, self.pos, Values::Int64(self.ts)] {
            columns.push(Column {
                values,
                levels: None,
            });
        }
        for (i, c) in schema.columns.iter().enumerate() {
            let (values, levels) = match self.data.get_mut(i).and_then(Option::take) {
                Some((_, values, mut levels)) => {
                    levels.resize(n, 0);
                    (values, levels)
                }
                None => (Values::new(c.ty, 0), vec![0; n]),
            };
            columns.push(Column {
                values,
                levels: Some(levels),
            });
        }
        columns
    }
}

/// How a column is written.
struct Plan {
    /// The encoding of values outside a dictionary.
    encoding: Encoding,
    /// Whether to try a dictionary first.
    dictionary: bool,
    /// Whether to keep minimum and maximum.
    min_max: bool,
}

impl Plan {
    fn for_column(field: &Field, column: &Column, encodings: ParquetEncodings) -> Self {
        // Ids and positions are unique per row, so they never get a
        // dictionary; the other columns get one where their first rows repeat.
        let unique_by_design = matches!(field.name().as_str(), "_record_id" | "_position");
        Self {
            encoding: value_encoding(field, encodings).unwrap_or(Encoding::PLAIN),
            dictionary: !unique_by_design && repeats(&column.values),
            min_max: useful_min_max(field),
        }
    }
}

/// Whether a column's minimum and maximum can help a reader skip data.
/// Not for record ids (hashes: every file spans nearly the whole range) nor
/// nested values (JSON text, whose order means nothing); for them the
/// writer's comparisons of every value were wasted, and those of JSON
/// text, which shares its first bytes (`[{"price_cents":`), long ones.
fn useful_min_max(field: &Field) -> bool {
    field.name() != "_record_id" && !is_json(field)
}

/// The encoding of a column's values outside a dictionary; `None` for
/// PLAIN.
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
/// parquet-rs, which wrote these files before Silt did, built a dictionary
/// for every column unless told otherwise and dropped it only when it
/// outgrew its page limit (1 MiB). A batch of
/// mostly distinct values (nested items, amounts, hashed e-mails) stayed
/// under that limit, so every value was hashed and interned, and written
/// twice (dictionary page and indices), for files that came out larger
/// than plain values under zstd. Deciding from the data keeps the choice
/// deterministic: the same records give the same bytes.
fn repeats(values: &Values) -> bool {
    let rows = values.len().min(SAMPLE_ROWS);
    if rows == 0 {
        // Only nulls: no values for a dictionary to hold.
        return false;
    }
    // Each value four times on average or more: a quarter as many distinct.
    let max = rows / 4;
    match values {
        Values::Text { data, ends } => {
            at_most_distinct((0..rows).map(|i| Values::text_at(data, ends, i)), max)
        }
        Values::Int64(v) => at_most_distinct(v[..rows].iter(), max),
        Values::Float64(v) => at_most_distinct(v[..rows].iter().map(|x| x.to_bits()), max),
        // Booleans are never dictionary-encoded.
        Values::Boolean(_) => false,
    }
}

/// Whether `values` hold at most `max` distinct values.
///
/// Sorting a sample of 512 texts compared each about nine times, through
/// a call to `memcmp`: about 400 instructions per record landed. Here each
/// value is hashed once into a set, and the count stops as soon as it
/// passes `max` (a column of distinct values, most of them, after a
/// quarter of its sample). Equality decides, so the count is exact; the
/// fixed seed keeps the work the same from run to run.
fn at_most_distinct<T: std::hash::Hash + Eq>(values: impl Iterator<Item = T>, max: usize) -> bool {
    let mut seen =
        HashSet::with_capacity_and_hasher(max + 1, foldhash::fast::FixedState::default());
    for v in values {
        if seen.insert(v) && seen.len() > max {
            return false;
        }
    }
    true
}

/// A column's dictionary: distinct values in order of first appearance,
/// and each value's index.
struct Dictionary {
    /// The values, plainly encoded (the dictionary page's content).
    page: Vec<u8>,
    indices: Vec<u32>,
    /// Where each value first appears (so, one row holding each); as many
    /// as the dictionary has entries.
    firsts: Vec<usize>,
}

impl Dictionary {
    /// One row holding each distinct value among values `from..to`.
    fn used(&self, from: usize, to: usize) -> Vec<usize> {
        if from == 0 && to == self.indices.len() {
            return self.firsts.clone();
        }
        let mut seen = vec![false; self.firsts.len()];
        for &i in &self.indices[from..to] {
            seen[i as usize] = true;
        }
        self.firsts
            .iter()
            .zip(seen)
            .filter_map(|(f, s)| s.then_some(*f))
            .collect()
    }
}

/// Builds a column's dictionary, or `None` when it would outgrow its page.
fn dictionary(values: &Values) -> Option<Dictionary> {
    fn build<K: std::hash::Hash + Eq + Copy>(
        keys: impl Iterator<Item = K>,
        mut put: impl FnMut(K, &mut Vec<u8>),
        n: usize,
    ) -> Option<Dictionary> {
        // Most dictionary columns hold a handful of values (operations,
        // statuses, currencies): a short list searched from the last value
        // found answers them without hashing; past it, a map.
        let mut few: Vec<K> = Vec::new();
        let mut many: HashMap<K, u32> = HashMap::new();
        let mut page = Vec::new();
        let mut indices = Vec::with_capacity(n);
        let mut firsts = Vec::new();
        let mut last = 0usize;
        for (at, k) in keys.enumerate() {
            let index = if !many.is_empty() {
                let next = many.len() as u32;
                *many.entry(k).or_insert_with(|| {
                    put(k, &mut page);
                    firsts.push(at);
                    next
                }) as usize
            } else if few.get(last) == Some(&k) {
                last
            } else if let Some(i) = few.iter().position(|f| *f == k) {
                last = i;
                i
            } else {
                put(k, &mut page);
                firsts.push(at);
                few.push(k);
                if few.len() > FEW_ENTRIES {
                    many.extend(few.iter().enumerate().map(|(i, f)| (*f, i as u32)));
                }
                last = few.len() - 1;
                last
            };
            if page.len() > DICTIONARY_BYTES {
                return None;
            }
            indices.push(index as u32);
        }
        Some(Dictionary {
            page,
            indices,
            firsts,
        })
    }
    let n = values.len();
    match values {
        Values::Text { data, ends } => build(
            (0..n).map(|i| Values::text_at(data, ends, i)),
            |v, page| pages::plain_byte_array(std::iter::once(v), page),
            n,
        ),
        Values::Int64(v) => build(
            v.iter().copied(),
            |v, page| page.extend_from_slice(&v.to_le_bytes()),
            n,
        ),
        Values::Float64(v) => build(
            v.iter().map(|x| x.to_bits()),
            |v, page| page.extend_from_slice(&v.to_le_bytes()),
            n,
        ),
        Values::Boolean(_) => None,
    }
}

/// Minimum and maximum of some values, as parquet-rs's statistics and the
/// column index want them.
#[derive(Clone)]
enum Bounds {
    Boolean(bool, bool),
    Int64(i64, i64),
    Float64(f64, f64),
    Text(Vec<u8>, Vec<u8>),
}

impl Bounds {
    /// Bounds of the values at `at`; `None` when there are none (or only NaN).
    fn of(values: &Values, at: impl Iterator<Item = usize>) -> Option<Self> {
        fn fold<T: Copy>(
            mut it: impl Iterator<Item = T>,
            less: impl Fn(T, T) -> bool,
        ) -> Option<(T, T)> {
            let first = it.next()?;
            // A value above the maximum cannot be below the minimum: one
            // comparison per value where values rise (positions, times).
            Some(it.fold((first, first), |(lo, hi), x| {
                if less(hi, x) {
                    (lo, x)
                } else if less(x, lo) {
                    (x, hi)
                } else {
                    (lo, hi)
                }
            }))
        }
        match values {
            Values::Boolean(v) => {
                fold(at.map(|i| v[i]), |a, b| !a & b).map(|(lo, hi)| Self::Boolean(lo, hi))
            }
            Values::Int64(v) => {
                fold(at.map(|i| v[i]), |a, b| a < b).map(|(lo, hi)| Self::Int64(lo, hi))
            }
            Values::Float64(v) => {
                let (min, max) = fold(at.map(|i| v[i]).filter(|x| !x.is_nan()), |a, b| a < b)?;
                // The format's rule for zeros: -0.0 as the minimum, +0.0 as the maximum.
                let min = if min == 0.0 { -0.0 } else { min };
                let max = if max == 0.0 { 0.0 } else { max };
                Some(Self::Float64(min, max))
            }
            Values::Text { data, ends } => {
                let (min, max) = fold(at.map(|i| Values::text_at(data, ends, i)), |a, b| a < b)?;
                Some(Self::Text(min.to_vec(), max.to_vec()))
            }
        }
    }

    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Boolean(a, b), Self::Boolean(c, d)) => Self::Boolean(a & c, b | d),
            (Self::Int64(a, b), Self::Int64(c, d)) => Self::Int64(a.min(c), b.max(d)),
            (Self::Float64(a, b), Self::Float64(c, d)) => Self::Float64(a.min(c), b.max(d)),
            (Self::Text(a, b), Self::Text(c, d)) => Self::Text(a.min(c), b.max(d)),
            (a, _) => a,
        }
    }

    /// Plainly encoded minimum and maximum, cut to bounds where long, for
    /// the column index; with whether each is exact.
    fn encoded(&self) -> ((Vec<u8>, bool), (Vec<u8>, bool)) {
        match self {
            Self::Boolean(a, b) => ((vec![u8::from(*a)], true), (vec![u8::from(*b)], true)),
            Self::Int64(a, b) => (
                (a.to_le_bytes().to_vec(), true),
                (b.to_le_bytes().to_vec(), true),
            ),
            Self::Float64(a, b) => (
                (a.to_le_bytes().to_vec(), true),
                (b.to_le_bytes().to_vec(), true),
            ),
            Self::Text(a, b) => (lower_bound(a), upper_bound(b)),
        }
    }

    /// The column chunk's statistics.
    fn statistics(
        bounds: Option<&Self>,
        nulls: u64,
        descr: &parquet::schema::types::ColumnDescriptor,
    ) -> Statistics {
        let signed = descr.sort_order().is_signed();
        fn value<T>(
            min: Option<T>,
            max: Option<T>,
            nulls: u64,
            signed: bool,
        ) -> ValueStatistics<T> {
            ValueStatistics::new(min, max, None, Some(nulls), false)
                .with_backwards_compatible_min_max(signed)
        }
        match bounds {
            Some(Self::Boolean(a, b)) => value(Some(*a), Some(*b), nulls, signed).into(),
            Some(Self::Int64(a, b)) => value(Some(*a), Some(*b), nulls, signed).into(),
            Some(Self::Float64(a, b)) => value(Some(*a), Some(*b), nulls, signed).into(),
            Some(text @ Self::Text(..)) => {
                let ((min, min_exact), (max, max_exact)) = text.encoded();
                value(
                    Some(ByteArray::from(min)),
                    Some(ByteArray::from(max)),
                    nulls,
                    signed,
                )
                .with_min_is_exact(min_exact)
                .with_max_is_exact(max_exact)
                .into()
            }
            // Only nulls: a count and no bounds, in the column's own type.
            None => match descr.physical_type() {
                parquet::basic::Type::BOOLEAN => value::<bool>(None, None, nulls, signed).into(),
                parquet::basic::Type::DOUBLE => value::<f64>(None, None, nulls, signed).into(),
                parquet::basic::Type::INT64 => value::<i64>(None, None, nulls, signed).into(),
                _ => value::<ByteArray>(None, None, nulls, signed).into(),
            },
        }
    }
}

/// Text cut to at most [`STATISTICS_BYTES`] at a character boundary: a
/// prefix is never greater than the text.
fn lower_bound(v: &[u8]) -> (Vec<u8>, bool) {
    if v.len() <= STATISTICS_BYTES {
        return (v.to_vec(), true);
    }
    let mut cut = STATISTICS_BYTES;
    while cut > 0 && v.get(cut).is_some_and(|b| b & 0xc0 == 0x80) {
        cut -= 1;
    }
    (v[..cut].to_vec(), false)
}

/// Text cut to at most [`STATISTICS_BYTES`] and its last character raised
/// by one, so that it is still above the text; whole when no character can
/// be raised at the same UTF-8 length.
fn upper_bound(v: &[u8]) -> (Vec<u8>, bool) {
    if v.len() <= STATISTICS_BYTES {
        return (v.to_vec(), true);
    }
    let (prefix, _) = lower_bound(v);
    if let Ok(text) = std::str::from_utf8(&prefix) {
        for (at, c) in text.char_indices().rev() {
            let raised = (c as u32 + 1..=c as u32 + 0x800)
                .find_map(char::from_u32)
                .filter(|r| r.len_utf8() == c.len_utf8());
            if let Some(r) = raised {
                let mut out = prefix[..at].to_vec();
                out.extend_from_slice(r.encode_utf8(&mut [0; 4]).as_bytes());
                return (out, false);
            }
        }
    }
    (v.to_vec(), true)
}

/// Encodes, compresses and frames one column chunk: its bytes (pages
/// with their headers) and what parquet-rs needs to place it in the file.
fn write_chunk(
    descr: ColumnDescPtr,
    column: &Column,
    plan: &Plan,
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> parquet::errors::Result<(Vec<u8>, ColumnCloseResult)> {
    let values = &column.values;
    let rows = column.levels.as_ref().map_or(values.len(), Vec::len);
    let dictionary = if plan.dictionary {
        dictionary(values)
    } else {
        None
    };
    let mut sink = TrackedWrite::new(Vec::new());
    let mut page_writer = SerializedPageWriter::new(&mut sink);
    let (mut compressed, mut uncompressed) = (0i64, 0i64);
    let mut dictionary_offset = None;
    let mut compress = |raw: &[u8]| -> parquet::errors::Result<Bytes> {
        zstd.compress(raw)
            .map(Bytes::from)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    };
    if let Some(d) = &dictionary {
        let page = Page::DictionaryPage {
            buf: compress(&d.page)?,
            num_values: d.firsts.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let spec = page_writer.write_page(CompressedPage::new(page, d.page.len()))?;
        dictionary_offset = Some(spec.offset as i64);
        compressed += spec.compressed_size as i64;
        uncompressed += spec.uncompressed_size as i64;
    }
    let encoding = if dictionary.is_some() {
        Encoding::RLE_DICTIONARY
    } else {
        plan.encoding
    };

    let mut offsets = OffsetIndexBuilder::new();
    let mut index = ColumnIndexBuilder::new(descr.physical_type());
    let mut chunk_bounds: Option<Bounds> = None;
    let mut nulls = 0u64;
    let mut data_offset = None;
    let mut data_pages = 0;
    let (mut row, mut value) = (0usize, 0usize);
    let mut raw = Vec::new();
    // Page by page; a chunk of no rows still gets its one (empty) page.
    while row < rows || (rows == 0 && data_offset.is_none()) {
        // Rows of this page, and the values among them.
        let (end_row, end_value) = page_end(column, row, value);
        let page_nulls = ((end_row - row) - (end_value - value)) as u64;
        raw.clear();
        if let Some(levels) = &column.levels {
            raw.extend_from_slice(&[0; 4]);
            pages::rle_hybrid(&levels[row..end_row], 1, &mut raw);
            let len = (raw.len() - 4) as u32;
            raw[..4].copy_from_slice(&len.to_le_bytes());
        }
        match &dictionary {
            Some(d) => {
                let width = pages::bit_width(d.firsts.len().saturating_sub(1) as u64);
                raw.push(width as u8);
                pages::rle_hybrid(&d.indices[value..end_value], width, &mut raw);
            }
            None => encode_values(values, value, end_value, encoding, &mut raw),
        }
        let page = Page::DataPage {
            buf: compress(&raw)?,
            num_values: (end_row - row) as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = page_writer.write_page(CompressedPage::new(page, raw.len()))?;
        data_offset.get_or_insert(spec.offset as i64);
        compressed += spec.compressed_size as i64;
        uncompressed += spec.uncompressed_size as i64;
        offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        offsets.append_row_count((end_row - row) as i64);
        if plan.min_max {
            // A dictionary column's bounds are among its distinct values:
            // comparing those, not every row, gives the same answer.
            let bounds = match &dictionary {
                Some(d) => Bounds::of(values, d.used(value, end_value).into_iter()),
                None => Bounds::of(values, value..end_value),
            };
            match &bounds {
                Some(b) => {
                    let ((min, _), (max, _)) = b.encoded();
                    index.append(false, min, max, page_nulls as i64);
                }
                None if end_value == value => {
                    index.append(true, Vec::new(), Vec::new(), page_nulls as i64)
                }
                // Values, but none with an order (NaN only): no index.
                None => index.to_invalid(),
            }
            chunk_bounds = match (chunk_bounds, bounds) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            };
        }
        nulls += page_nulls;
        data_pages += 1;
        (row, value) = (end_row, end_value);
    }
    page_writer.close()?;
    // RLE for the levels (as parquet-rs lists it, needed or not), PLAIN for
    // a dictionary page, and the data pages' one encoding.
    let mut encodings = BTreeSet::from([Encoding::RLE, encoding]);
    let mut encoding_stats = Vec::new();
    if dictionary.is_some() {
        encodings.insert(Encoding::PLAIN);
        encoding_stats.push(PageEncodingStats {
            page_type: PageType::DICTIONARY_PAGE,
            encoding: Encoding::PLAIN,
            count: 1,
        });
    }
    encoding_stats.push(PageEncodingStats {
        page_type: PageType::DATA_PAGE,
        encoding,
        count: data_pages,
    });
    let mut builder = ColumnChunkMetaData::builder(descr.clone())
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
        .set_page_encoding_stats(encoding_stats)
        .set_total_compressed_size(compressed)
        .set_total_uncompressed_size(uncompressed)
        .set_num_values(rows as i64)
        .set_data_page_offset(data_offset.unwrap_or(0))
        .set_dictionary_page_offset(dictionary_offset);
    let mut column_index = None;
    if plan.min_max {
        builder = builder.set_statistics(Bounds::statistics(chunk_bounds.as_ref(), nulls, &descr));
        if index.valid() {
            column_index = Some(index.build()?);
        }
    }
    let close = ColumnCloseResult {
        bytes_written: compressed as u64,
        rows_written: rows as u64,
        metadata: builder.build()?,
        bloom_filter: None,
        column_index,
        offset_index: Some(offsets.build()),
    };
    Ok((sink.into_inner()?, close))
}

/// Where the page starting at `row` (and value `value`) ends: at
/// [`PAGE_ROWS`] rows or [`PAGE_BYTES`] of values, whichever comes first.
fn page_end(column: &Column, row: usize, value: usize) -> (usize, usize) {
    let values = &column.values;
    let Some(levels) = &column.levels else {
        // No nulls: rows and values are the same.
        let mut end = (row + PAGE_ROWS).min(values.len());
        if values.plain_bytes(value, end) > PAGE_BYTES {
            end = value + 1;
            while end < values.len() && values.plain_bytes(value, end + 1) <= PAGE_BYTES {
                end += 1;
            }
        }
        return (end, end);
    };
    let last_row = (row + PAGE_ROWS).min(levels.len());
    let present = levels[row..last_row].iter().filter(|l| **l == 1).count();
    if values.plain_bytes(value, value + present) <= PAGE_BYTES {
        return (last_row, value + present);
    }
    let (mut end_row, mut end_value) = (row, value);
    while end_row < last_row {
        let next = end_value + levels[end_row] as usize;
        if end_row > row && values.plain_bytes(value, next) > PAGE_BYTES {
            break;
        }
        end_row += 1;
        end_value = next;
    }
    (end_row, end_value)
}

/// Values `from..to` in `encoding`.
fn encode_values(values: &Values, from: usize, to: usize, encoding: Encoding, out: &mut Vec<u8>) {
    match values {
        Values::Boolean(v) => pages::plain_booleans(&v[from..to], out),
        Values::Int64(v) if encoding == Encoding::DELTA_BINARY_PACKED => {
            pages::delta_binary_packed(&v[from..to], out)
        }
        Values::Int64(v) => v[from..to]
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::Float64(v) => v[from..to]
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::Text { data, ends } => {
            let each = (from..to).map(|i| Values::text_at(data, ends, i));
            match encoding {
                Encoding::DELTA_LENGTH_BYTE_ARRAY => {
                    let lengths: Vec<i64> = each.map(|v| v.len() as i64).collect();
                    let bytes = &data[Values::text_span(ends, from, to)];
                    pages::delta_length_byte_array(&lengths, bytes, out)
                }
                Encoding::DELTA_BYTE_ARRAY => pages::delta_byte_array(each, out),
                _ => pages::plain_byte_array(each, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use silt_core::Op;
    use silt_core::schema::Column as SchemaColumn;
    use silt_core::schema::evolve;

    proptest! {
        /// The count that stops early says what sorting the whole sample
        /// says, for texts drawn from few values or many, and any bound.
        #[test]
        fn distinct_texts_are_counted_as_a_sort_counts_them(
            texts in prop::collection::vec(prop::collection::vec(0u8..4, 0..12), 0..80),
            max in 0usize..40,
        ) {
            let mut sorted: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
            sorted.sort_unstable();
            sorted.dedup();
            let got = at_most_distinct(texts.iter().map(Vec::as_slice), max);
            prop_assert_eq!(got, sorted.len() <= max);
        }
    }

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
            let evo = silt_core::schema::evolve_with(&start, &refs, |a| accepted.push(refs[a.index]));
            prop_assert_eq!(accepted.len() + evo.conflicts.len(), refs.len());
            for choice in [ParquetEncodings::Delta, ParquetEncodings::Plain] {
                let alone = encode_parquet(&evo.schema, &accepted, choice).unwrap();
                let mut again = Gather::new(0);
                silt_core::schema::evolve_with(&start, &refs, |a| {
                    again.push(refs[a.index], a.image, a.columns, a.cell_columns);
                });
                let during = encode_columns(&evo.schema, again.finish(&evo.schema), choice).unwrap();
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
        let index = &reader.metadata().column_index().unwrap()[0][4];
        let parquet::file::page_index::column_index::ColumnIndexMetaData::BYTE_ARRAY(k) = index
        else {
            panic!("{index:?}");
        };
        let bounds: Vec<(&[u8], &[u8])> = (0..2)
            .map(|p| (k.min_value(p).unwrap(), k.max_value(p).unwrap()))
            .collect();
        assert_eq!(bounds, [(&b"k0"[..], &b"k3"[..]), (&b"k4"[..], &b"k4"[..])]);
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
    fn long_text_bounds_are_cut_but_still_bound() {
        let long_min = "b".repeat(70);
        let long_max = format!("{}é{}", "y".repeat(63), "z".repeat(10));
        assert_eq!(
            lower_bound(long_min.as_bytes()),
            ("b".repeat(64).into_bytes(), false)
        );
        let (max, exact) = upper_bound(long_max.as_bytes());
        assert!(!exact);
        assert!(max.as_slice() > long_max.as_bytes() && max.len() <= STATISTICS_BYTES);
        assert_eq!(max, format!("{}z", "y".repeat(62)).into_bytes());
        // A prefix of only the highest characters cannot be raised: kept whole.
        let top = "\u{10FFFF}".repeat(20);
        assert_eq!(
            upper_bound(top.as_bytes()),
            (top.clone().into_bytes(), true)
        );
    }

    #[test]
    fn dictionaries_past_the_short_list_read_back() {
        // 40 distinct values: the first FEW_ENTRIES by search, the rest by map.
        let schema = typed(&[("n", ColumnType::Int64), ("s", ColumnType::String)]);
        let records: Vec<ChangeRecord> = (0..1000)
            .map(|i| {
                rec(
                    &format!("{i:05}"),
                    json!({"id": i, "n": (i * 7) % 40 - 20, "s": format!("v{}", (i * 13) % 40)}),
                )
            })
            .collect();
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
        let group = reader.metadata().row_group(0);
        assert!(group.column(4).dictionary_page_offset().is_some());
        assert!(group.column(5).dictionary_page_offset().is_some());
        // Bounds taken from the dictionary's values are the rows' bounds.
        match (group.column(4).statistics(), group.column(5).statistics()) {
            (Some(Statistics::Int64(n)), Some(Statistics::ByteArray(s))) => {
                assert_eq!((n.min_opt(), n.max_opt()), (Some(&-20), Some(&19)));
                assert_eq!(s.min_opt().map(|v| v.data()), Some(&b"v0"[..]));
                assert_eq!(s.max_opt().map(|v| v.data()), Some(&b"v9"[..]));
            }
            other => panic!("statistics: {other:?}"),
        }
        let batch = read_all(bytes);
        let (n, s) = n_and_s(&batch);
        for i in 0..1000i64 {
            assert_eq!(n.value(i as usize), (i * 7) % 40 - 20);
            assert_eq!(s.value(i as usize), format!("v{}", (i * 13) % 40));
        }
    }

    #[test]
    fn a_column_of_nulls_gets_no_dictionary() {
        let schema = typed(&[("n", ColumnType::Int64), ("s", ColumnType::String)]);
        let records: Vec<ChangeRecord> = (0..10)
            .map(|i| rec(&format!("{i:05}"), json!({"id": i, "n": null})))
            .collect();
        let refs: Vec<&ChangeRecord> = records.iter().collect();
        let bytes = encode_parquet(&schema, &refs, ParquetEncodings::Delta).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
        let group = reader.metadata().row_group(0);
        assert!(group.column(4).dictionary_page_offset().is_none());
        assert!(group.column(5).dictionary_page_offset().is_none());
        let batch = read_all(bytes);
        let (n, s) = n_and_s(&batch);
        assert_eq!((n.null_count(), s.null_count()), (10, 10));
    }
}
