//! Reading a JSON array of record objects while keeping track of where a failure happened.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::DataError;

/// A record as read: its top-level fields.
pub type RawRecord = Map<String, Value>;

#[derive(Default)]
struct Loc {
    record: usize,
    field: String,
}

struct Records<'a>(&'a RefCell<Loc>);
struct RecordSeed<'a>(&'a RefCell<Loc>);
struct RecordFields<'a>(&'a RefCell<Loc>);

impl<'de> Visitor<'de> for Records<'_> {
    type Value = Vec<RawRecord>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of record objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            *self.0.borrow_mut() = Loc {
                record: out.len(),
                field: "(record)".into(),
            };
            match seq.next_element_seed(RecordSeed(self.0))? {
                Some(r) => out.push(r),
                None => return Ok(out),
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = RawRecord;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(RecordFields(self.0))
    }
}

impl<'de> Visitor<'de> for RecordFields<'_> {
    type Value = RawRecord;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        loop {
            self.0.borrow_mut().field = "(key)".into();
            let Some(key) = map.next_key::<String>()? else {
                return Ok(out);
            };
            self.0.borrow_mut().field = key.clone();
            let value: Value = map.next_value()?;
            out.insert(key, value);
        }
    }
}

/// Reads `path` as a JSON array of objects. Errors name the record index and the field that
/// was being read (truncation, invalid UTF-8, a non-object record, malformed JSON).
pub fn read_records(path: &Path) -> Result<Vec<RawRecord>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let loc = RefCell::new(Loc {
        record: 0,
        field: "(file)".into(),
    });
    // A UTF-8 byte-order mark (as some editors write) is not part of the JSON.
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = de
        .deserialize_seq(Records(&loc))
        .and_then(|records| de.end().map(|()| records));
    parsed.map_err(|e| {
        let loc = loc.into_inner();
        DataError::Parse {
            path: path.to_path_buf(),
            record: loc.record,
            field: loc.field,
            detail: e.to_string(),
        }
    })
}
