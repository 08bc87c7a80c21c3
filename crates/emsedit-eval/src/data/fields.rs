//! Typed access to a record's fields with errors that name file, record and field.

use std::path::Path;

use serde_json::Value;

use crate::DataError;
use crate::data::json::RawRecord;

/// Longest text accepted in one field (1 MiB): editing prompts are sentences.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// One record being converted, for error messages.
pub struct Fields<'a> {
    pub path: &'a Path,
    pub index: usize,
    pub record: &'a RawRecord,
}

impl<'a> Fields<'a> {
    /// An error about `field` of this record.
    pub fn error(&self, field: &str, detail: impl Into<String>) -> DataError {
        DataError::Record {
            path: self.path.to_path_buf(),
            record: self.index,
            field: field.to_string(),
            detail: detail.into(),
        }
    }

    /// The value at a dotted path (`requested_rewrite.target_new.str`).
    pub fn value(&self, field: &str) -> Result<&'a Value, DataError> {
        let mut parts = field.split('.');
        let first = parts.next().unwrap_or(field);
        let mut v = self
            .record
            .get(first)
            .ok_or_else(|| self.error(field, "missing"))?;
        for part in parts {
            v = v.get(part).ok_or_else(|| self.error(field, "missing"))?;
        }
        Ok(v)
    }

    /// Whether the record has this top-level field.
    pub fn has(&self, field: &str) -> bool {
        self.record.contains_key(field)
    }

    /// A string field checked by [`text`].
    pub fn str(&self, field: &str) -> Result<String, DataError> {
        self.text(field, self.value(field)?)
    }

    /// `v` as text: a string within [`MAX_TEXT_BYTES`].
    pub fn text(&self, field: &str, v: &Value) -> Result<String, DataError> {
        let s = v
            .as_str()
            .ok_or_else(|| self.error(field, format!("expected a string, found {}", kind(v))))?;
        if s.len() > MAX_TEXT_BYTES {
            return Err(self.error(
                field,
                format!(
                    "text of {} bytes exceeds the limit of {MAX_TEXT_BYTES}",
                    s.len()
                ),
            ));
        }
        Ok(s.to_string())
    }

    /// A non-blank string field: a blank one makes the record unusable
    /// ([`DataError::Unusable`], which loaders turn into a skipped record).
    pub fn nonempty(&self, field: &str) -> Result<String, DataError> {
        self.nonempty_text(field, self.value(field)?)
    }

    /// `v` as non-blank text (prompts and targets: a blank one cannot be edited or scored).
    pub fn nonempty_text(&self, field: &str, v: &Value) -> Result<String, DataError> {
        let s = self.text(field, v)?;
        if s.trim().is_empty() {
            return Err(DataError::Unusable {
                path: self.path.to_path_buf(),
                record: self.index,
                field: field.to_string(),
                reason: "empty text".into(),
            });
        }
        Ok(s)
    }

    /// An array field.
    pub fn array(&self, field: &str) -> Result<&'a Vec<Value>, DataError> {
        let v = self.value(field)?;
        v.as_array()
            .ok_or_else(|| self.error(field, format!("expected an array, found {}", kind(v))))
    }
}

/// A JSON value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
