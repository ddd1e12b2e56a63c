//! Strict JSON: the parser every piece of metadata goes through, and the securesystemslib
//! canonical encoder that classic signatures cover.
//!
//! The parser is `serde_json` with a stricter value builder on top. It rejects what other
//! implementations would read ambiguously: duplicate object keys at any depth (also after
//! escapes are decoded, so `"ru\u006e"` next to `"run"` is a duplicate), numbers that are not
//! integers in the `i64` range (`1.0`, `1e0`, `-0`, `2^64`), the character U+0000, a byte order
//! mark, trailing data, and nesting deeper than `serde_json`'s limit of 128. Invalid UTF-8, lone
//! surrogate escapes and raw control characters are already JSON syntax errors.
//!
//! [`parse_data`] is the same parser with one rule relaxed, for documents that carry a tool's
//! output rather than in-toto metadata (an attestation's predicate: CVSS scores such as `7.5`):
//! any JSON number is accepted; duplicate keys, U+0000, the byte order mark, trailing data and
//! the depth cap still refuse. Links and layouts never go through it.
//!
//! The encoder reproduces `securesystemslib.formats.encode_canonical` byte for byte: object keys
//! sorted by code point, no whitespace, only `"` and `\` escaped, every other character raw.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document is not strict JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The input holds no bytes.
    #[error("the file is empty")]
    Empty,
    /// The input starts with a UTF-8 byte order mark.
    #[error("the file starts with a byte order mark; save it as UTF-8 without one")]
    ByteOrderMark,
    /// An object names the same key twice.
    #[error("duplicate key {key:?} at line {line} column {column}")]
    DuplicateKey {
        /// The repeated key, after escapes were decoded.
        key: String,
        /// Line of the repeat.
        line: usize,
        /// Column of the repeat.
        column: usize,
    },
    /// A number with a fraction or exponent, `-0`, or outside the `i64` range.
    #[error(
        "number at line {line} column {column} is not an integer in the signed 64-bit range \
         (no fraction, exponent or -0)"
    )]
    NotAnInteger {
        /// Line of the number.
        line: usize,
        /// Column of the number.
        column: usize,
    },
    /// A string holds U+0000.
    #[error("string at line {line} column {column} contains the character U+0000")]
    NulCharacter {
        /// Line of the string.
        line: usize,
        /// Column of the string.
        column: usize,
    },
    /// Arrays and objects nest deeper than the parser's recursion limit (128).
    #[error("nesting too deep (more than 128 levels)")]
    TooDeep,
    /// Anything else that is not JSON: a syntax error, invalid UTF-8, a lone surrogate, trailing
    /// data after the document.
    #[error("not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// A value that canonical JSON cannot encode (a float), found while encoding.
    #[error("canonical JSON cannot encode the number {0}: only integers are allowed")]
    NotCanonicalizable(#[source] serde_json::Error),
}

/// The strictness rules one parse has broken, recorded beside `serde_json`'s own error so that
/// the caller gets a typed reason instead of a message string. Typed payloads report through
/// the same record (see [`violation`]), so it lives in a thread-local slot for the length of
/// one parse.
#[derive(Debug, Clone)]
pub(crate) enum Violation {
    DuplicateKey(String),
    NotAnInteger,
    Nul,
}

thread_local! {
    static VIOLATION: Cell<Option<Violation>> = const { Cell::new(None) };
}

/// Records a strictness violation found by a visitor and returns the serde error to stop the
/// parse with; [`parse_typed`] turns it into the matching [`JsonError`].
pub(crate) fn violation<E: serde::de::Error>(violation: Violation) -> E {
    let message = match &violation {
        Violation::DuplicateKey(key) => format!("duplicate key {key:?}"),
        Violation::NotAnInteger => "number is not an integer".to_owned(),
        Violation::Nul => "string contains U+0000".to_owned(),
    };
    VIOLATION.with(|slot| slot.set(Some(violation)));
    E::custom(message)
}

/// Parses one JSON document strictly (see the module docs).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    parse_typed::<Strict>(bytes).map(|strict| strict.0)
}

/// Parses one JSON document as strictly as [`parse`], except that any number is accepted
/// (fractions, exponents, integers beyond `i64`): for data documents such as an attestation's
/// predicate, never for links or layouts.
pub fn parse_data(bytes: &[u8]) -> Result<Value, JsonError> {
    parse_typed::<Data>(bytes).map(|data| data.0)
}

/// `T` from the whole input, nothing but whitespace after it.
fn deserialize_whole<'de, T, R>(mut de: serde_json::Deserializer<R>) -> serde_json::Result<T>
where
    T: serde::Deserialize<'de>,
    R: serde_json::de::Read<'de>,
{
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Parses one document strictly into `T`. `T`'s own checks (unknown fields, types) apply;
/// duplicate keys, non-integers and U+0000 are caught in every value parsed through
/// [`Strict`], and in maps whose visitors report them through the same record.
pub fn parse_typed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    if bytes.is_empty() {
        return Err(JsonError::Empty);
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonError::ByteOrderMark);
    }
    VIOLATION.with(|slot| slot.set(None));
    // Text that is UTF-8 throughout (checked at once, word by word) is parsed as text, so that
    // each string in it is not checked again; anything else is parsed as bytes, whose parser
    // reports where the bad byte is.
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => deserialize_whole(serde_json::Deserializer::from_str(text)),
        Err(_) => deserialize_whole(serde_json::Deserializer::from_slice(bytes)),
    };
    let found = VIOLATION.with(Cell::take);
    match parsed {
        Ok(value) => Ok(value),
        Err(err) => {
            let (line, column) = (err.line(), err.column());
            Err(match found {
                Some(Violation::DuplicateKey(key)) => JsonError::DuplicateKey { key, line, column },
                Some(Violation::NotAnInteger) => JsonError::NotAnInteger { line, column },
                Some(Violation::Nul) => JsonError::NulCharacter { line, column },
                None if err.to_string().starts_with("recursion limit exceeded") => {
                    JsonError::TooDeep
                }
                None => JsonError::Syntax(err),
            })
        }
    }
}

/// A JSON value parsed strictly, for opaque fields inside typed payloads (byproducts,
/// environment) and for whole documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Strict(pub Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StrictSeed { floats: false }
            .deserialize(deserializer)
            .map(Strict)
    }
}

impl serde::Serialize for Strict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A JSON value parsed as [`parse_data`] parses: [`Strict`] with any number accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Data(pub Value);

impl<'de> serde::Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StrictSeed { floats: true }
            .deserialize(deserializer)
            .map(Data)
    }
}

impl serde::Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Rejects a string holding U+0000.
pub(crate) fn no_nul<E: serde::de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        Err(violation(Violation::Nul))
    } else {
        Ok(())
    }
}

/// The strict value builder; `floats` relaxes the integers-only rule (see [`parse_data`]).
#[derive(Clone, Copy)]
struct StrictSeed {
    floats: bool,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => Ok(Value::from(v)),
            Err(_) if self.floats => Ok(Value::from(v)),
            Err(_) => Err(violation(Violation::NotAnInteger)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        match serde_json::Number::from_f64(v) {
            Some(number) if self.floats => Ok(Value::Number(number)),
            _ => Err(violation(Violation::NotAnInteger)),
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        no_nul(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        no_nul(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            no_nul(&key)?;
            let value = map.next_value_seed(self)?;
            if object.contains_key(&key) {
                return Err(violation(Violation::DuplicateKey(key)));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Encodes `value` as securesystemslib canonical JSON, the bytes classic signatures cover.
///
/// Any `Serialize` value works whose maps and structs emit their keys in code-point order
/// (`BTreeMap`s, `serde_json::Value`, and Tollgate's own payload types); a float is an error.
pub fn canonical<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter);
    match value.serialize(&mut ser) {
        Ok(()) => Ok(out),
        Err(e) => Err(JsonError::NotCanonicalizable(e)),
    }
}

/// Writes the canonical form of `value` into `out` as it is made, without holding it whole.
pub fn canonical_to<T: serde::Serialize + ?Sized, W: std::io::Write>(
    value: &T,
    out: W,
) -> Result<(), JsonError> {
    let mut ser = serde_json::Serializer::with_formatter(out, CanonicalFormatter);
    value
        .serialize(&mut ser)
        .map_err(JsonError::NotCanonicalizable)
}

/// A payload that writes its own canonical form: the same bytes as [`canonical_to`], made
/// faster where a payload can be large (a link's artifact maps) by writing them directly
/// rather than one serde call per quote and colon.
pub trait Canonical {
    /// Writes the canonical form of `self` into `out`.
    fn write_canonical<W: std::io::Write>(&self, out: &mut W) -> Result<(), JsonError>;

    /// The canonical form of `self`, whole.
    fn canonical_bytes(&self) -> Result<Vec<u8>, JsonError> {
        let mut out = Vec::with_capacity(4096);
        self.write_canonical(&mut out)?;
        Ok(out)
    }
}

impl Canonical for Strict {
    fn write_canonical<W: std::io::Write>(&self, out: &mut W) -> Result<(), JsonError> {
        canonical_to(self, out)
    }
}

/// Writes `text` as a canonical JSON string: quoted, with only `"` and `\` escaped, exactly
/// as [`canonical_to`] writes strings.
pub fn write_canonical_str<W: std::io::Write>(out: &mut W, text: &str) -> std::io::Result<()> {
    let bytes = text.as_bytes();
    out.write_all(b"\"")?;
    // Nearly every string has neither; one branch-free (vectorised) pass says so, and only
    // the others are walked byte by byte.
    let plain = bytes
        .iter()
        .fold(true, |plain, &b| plain & (b != b'"') & (b != b'\\'));
    let mut start = 0;
    if !plain {
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' || b == b'\\' {
                out.write_all(&bytes[start..i])?;
                out.write_all(if b == b'"' { b"\\\"" } else { b"\\\\" })?;
                start = i + 1;
            }
        }
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

/// serde_json's compact output, but with strings as securesystemslib writes them: only `"`
/// and `\` escaped, control characters raw; and no floats.
struct CanonicalFormatter;

impl serde_json::ser::Formatter for CanonicalFormatter {
    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let raw = match escape {
            CharEscape::Quote => return w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => return w.write_all(b"\\\\"),
            CharEscape::Backspace => 0x08,
            CharEscape::Tab => b'\t',
            CharEscape::LineFeed => b'\n',
            CharEscape::FormFeed => 0x0c,
            CharEscape::CarriageReturn => b'\r',
            CharEscape::AsciiControl(byte) => byte,
            // Not emitted by serde_json for string contents; written as itself.
            _ => b'/',
        };
        w.write_all(&[raw])
    }

    fn write_f32<W: ?Sized + std::io::Write>(&mut self, _: &mut W, v: f32) -> std::io::Result<()> {
        Err(std::io::Error::other(format!("{v}")))
    }

    fn write_f64<W: ?Sized + std::io::Write>(&mut self, _: &mut W, v: f64) -> std::io::Result<()> {
        Err(std::io::Error::other(format!("{v}")))
    }
}

/// The layouts of ordinary (not canonical) JSON that the reference writes, so that Tollgate's
/// files are byte for byte what Python's `json.dumps(..., sort_keys=True)` gives: keys sorted,
/// every non-ASCII character escaped as `\uXXXX` (`ensure_ascii`), no final newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonStyle {
    /// `indent=1, separators=(",", ": ")`: classic signed files.
    Indented,
    /// Default separators `", "` and `": "` on one line: DSSE envelopes and payloads.
    OneLine,
}

/// Serialises `value` the way the reference's Python would (see [`PythonStyle`]).
pub fn to_python_json<T: serde::Serialize + ?Sized>(value: &T, style: PythonStyle) -> Vec<u8> {
    to_python_json_at(value, style, 0)
}

/// [`to_python_json`] for a value that will stand `depth` levels deep inside a larger
/// document: its inner lines are indented as they would be there.
pub fn to_python_json_at<T: serde::Serialize + ?Sized>(
    value: &T,
    style: PythonStyle,
    depth: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        PythonFormatter {
            style,
            depth,
            has_value: false,
        },
    );
    // Writing into a Vec cannot fail, and Tollgate's payload types have string keys only.
    if value.serialize(&mut ser).is_err() {
        out.clear();
    }
    out
}

struct PythonFormatter {
    style: PythonStyle,
    depth: usize,
    has_value: bool,
}

impl PythonFormatter {
    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        // A link writes three lines an artifact: the indent is copied, never allocated.
        const SPACES: &[u8; 32] = b"                                ";
        w.write_all(b"\n")?;
        let mut left = self.depth;
        while left > 0 {
            let now = left.min(SPACES.len());
            w.write_all(&SPACES[..now])?;
            left -= now;
        }
        Ok(())
    }

    fn separator<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        match self.style {
            PythonStyle::Indented => {
                if !first {
                    w.write_all(b",")?;
                }
                self.newline(w)
            }
            PythonStyle::OneLine if first => Ok(()),
            PythonStyle::OneLine => w.write_all(b", "),
        }
    }

    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, b: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b)
    }

    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, b: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.style == PythonStyle::Indented && self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(b)
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.separator(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.separator(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // ASCII runs go out whole; each other character as one or two \uXXXX escapes.
        let mut rest = fragment;
        while let Some(at) = rest.find(|c: char| !c.is_ascii()) {
            w.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\u{fffd}');
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Value, JsonError> {
        parse(s.as_bytes())
    }

    #[test]
    fn canonical_escapes_only_quote_and_backslash() {
        let value = parse_str(r#"{"b":"a\"b\\c\nd\te\u00e9\u2713","a":[1,-2,true,null]}"#)
            .expect("valid json");
        let bytes = canonical(&value).expect("encodable");
        assert_eq!(
            bytes,
            "{\"a\":[1,-2,true,null],\"b\":\"a\\\"b\\\\c\nd\te\u{e9}\u{2713}\"}".as_bytes()
        );
    }

    #[test]
    fn canonical_sorts_keys_by_code_point() {
        let value = parse_str(r#"{"é":1,"z":2,"A":3,"a":4,"_type":5}"#).expect("valid json");
        assert_eq!(
            canonical(&value).expect("encodable"),
            "{\"A\":3,\"_type\":5,\"a\":4,\"z\":2,\"é\":1}".as_bytes()
        );
    }

    #[test]
    fn b1_duplicate_keys_rejected_at_any_depth() {
        for doc in [
            r#"{"a":1,"a":2}"#,
            r#"{"signed":{"materials":{"foo":{},"foo":{}}}}"#,
            r#"[{"x":[{"k":1,"k":1}]}]"#,
        ] {
            assert!(
                matches!(parse_str(doc), Err(JsonError::DuplicateKey { .. })),
                "{doc}"
            );
        }
    }

    #[test]
    fn b2_escape_equivalent_keys_are_duplicates() {
        match parse_str(r#"{"run":1,"ru\u006e":2}"#) {
            Err(JsonError::DuplicateKey { key, .. }) => assert_eq!(key, "run"),
            other => panic!("expected duplicate key, got {other:?}"),
        }
        // Case variants are different keys to the parser; the schema rejects unknown ones.
        assert!(parse_str(r#"{"run":1,"Run":2}"#).is_ok());
    }

    #[test]
    fn b4_non_integers_rejected() {
        for doc in [
            "1.0",
            "1e0",
            "-0",
            "18446744073709551616",
            "9223372036854775808",
            r#"{"threshold":1.5}"#,
        ] {
            assert!(
                matches!(parse_str(doc), Err(JsonError::NotAnInteger { .. })),
                "{doc}"
            );
        }
        assert_eq!(
            parse_str("9223372036854775807").expect("i64 max"),
            Value::from(i64::MAX)
        );
        assert!(matches!(parse_str("01"), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn b5_bad_strings_rejected() {
        assert!(matches!(parse(b"\"\xff\""), Err(JsonError::Syntax(_))));
        assert!(matches!(
            parse_str(r#""\ud800""#),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_str("\"a\u{1}b\""),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_str(r#""a\u0000b""#),
            Err(JsonError::NulCharacter { .. })
        ));
        assert!(matches!(
            parse_str(r#"{"a\u0000":1}"#),
            Err(JsonError::NulCharacter { .. })
        ));
    }

    #[test]
    fn b6_framing_rejected() {
        assert!(matches!(parse(b""), Err(JsonError::Empty)));
        assert!(matches!(
            parse(b"\xEF\xBB\xBF{}"),
            Err(JsonError::ByteOrderMark)
        ));
        assert!(matches!(parse_str("{} x"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse_str("{}{}"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse_str("   "), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn b7_deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(parse_str(&deep), Err(JsonError::TooDeep)));
        let fine = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_str(&fine).is_ok());
    }

    #[test]
    fn python_styles_match_json_dumps() {
        let value = parse_str(r#"{"b":[1,{"c":"é\n✓😀"}],"a":{},"d":[]}"#).expect("valid json");
        // json.dumps(v, indent=1, separators=(",", ": "), sort_keys=True)
        assert_eq!(
            String::from_utf8(to_python_json(&value, PythonStyle::Indented)).expect("ascii"),
            "{\n \"a\": {},\n \"b\": [\n  1,\n  {\n   \"c\": \"\\u00e9\\n\\u2713\\ud83d\\ude00\"\n  }\n ],\n \"d\": []\n}"
        );
        // json.dumps(v, sort_keys=True)
        assert_eq!(
            String::from_utf8(to_python_json(&value, PythonStyle::OneLine)).expect("ascii"),
            "{\"a\": {}, \"b\": [1, {\"c\": \"\\u00e9\\n\\u2713\\ud83d\\ude00\"}], \"d\": []}"
        );
    }

    #[test]
    fn python_indent_grows_one_space_a_level_however_deep() {
        // Deeper than the indent the formatter copies at once.
        let depth = 70;
        let text = "[".repeat(depth) + "1" + &"]".repeat(depth);
        let value = parse_str(&text).expect("valid json");
        let mut expected = String::new();
        for level in 0..depth {
            expected.push_str("[\n");
            expected.push_str(&" ".repeat(level + 1));
        }
        expected.push('1');
        for level in (0..depth).rev() {
            expected.push('\n');
            expected.push_str(&" ".repeat(level));
            expected.push(']');
        }
        assert_eq!(
            String::from_utf8(to_python_json(&value, PythonStyle::Indented)).expect("ascii"),
            expected
        );
    }

    #[test]
    fn data_documents_accept_any_number_and_nothing_else_more() {
        let value = parse_data(br#"{"cvss": 7.5, "big": 18446744073709551615, "e": 1e3, "i": 7}"#)
            .expect("numbers of any form");
        assert_eq!(value["cvss"].as_f64(), Some(7.5));
        assert_eq!(value["big"].as_u64(), Some(u64::MAX));
        assert_eq!(value["e"].as_f64(), Some(1000.0));
        assert_eq!(value["i"].as_i64(), Some(7));
        // The same document is not strict metadata.
        assert!(matches!(
            parse(br#"{"cvss": 7.5}"#),
            Err(JsonError::NotAnInteger { .. })
        ));
        // Every other rule still holds, at any depth.
        assert!(matches!(
            parse_data(br#"{"a": [{"k": 1.5, "k": 2.5}]}"#),
            Err(JsonError::DuplicateKey { .. })
        ));
        assert!(matches!(
            parse_data(b"{\"a\": \"x\\u0000\"}"),
            Err(JsonError::NulCharacter { .. })
        ));
        assert!(matches!(
            parse_data(b"\xEF\xBB\xBF{}"),
            Err(JsonError::ByteOrderMark)
        ));
        assert!(matches!(parse_data(b"{} {}"), Err(JsonError::Syntax(_))));
        let deep = format!("{}1.5{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse_data(deep.as_bytes()),
            Err(JsonError::TooDeep)
        ));
    }

    /// A data document's numbers are read correctly rounded, as Rust reads them, so that a
    /// predicate written again holds the values its tool wrote.
    #[test]
    fn data_numbers_are_read_exactly_and_write_back_the_same() {
        for text in [
            "0.1",
            "7.5",
            "2.2250738585072011e-308",
            "1.7976931348623157e308",
            "5e-324",
            "123456.789e-3",
            "0.30000000000000004",
            "9007199254740993.0",
            "3.141592653589793238462643383279",
        ] {
            let expected: f64 = text.parse().expect("a float");
            let value = parse_data(format!("[{text}]").as_bytes()).expect("a number");
            assert_eq!(value[0].as_f64(), Some(expected), "{text}");
            let again = parse_data(&to_python_json(&value, PythonStyle::OneLine)).expect("json");
            assert_eq!(again, value, "{text}");
        }
    }

    #[test]
    fn floats_cannot_be_canonicalised() {
        let value = serde_json::json!({ "x": 1.5 });
        assert!(matches!(
            canonical(&value),
            Err(JsonError::NotCanonicalizable(_))
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Any JSON value (no floats, which canonical JSON refuses) whose strings and keys
        /// come from `text`.
        fn arb_json_from(
            text: impl Strategy<Value = String> + Clone + 'static,
        ) -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                text.clone().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 64, 8, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(text.clone(), inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Text with no control character (canonical JSON writes those raw, and then it is not
        /// JSON), often printable ASCII so that quotes and backslashes turn up.
        fn json_text() -> impl Strategy<Value = String> + Clone {
            prop_oneof![
                "[ -~]{0,12}",
                "[ \"\\\\a\u{7f}é✓😀]{0,8}",
                "[^\u{0}-\u{1f}]{0,12}"
            ]
        }

        /// Text that may hold control characters (other than NUL, which the parser refuses
        /// with its own error wherever it appears).
        fn text_with_controls() -> impl Strategy<Value = String> + Clone {
            "[\u{1}-\u{1f} \"\\\\aé]{0,8}"
        }

        fn has_control(value: &Value) -> bool {
            let control = |s: &str| s.chars().any(|c| c < ' ');
            match value {
                Value::String(s) => control(s),
                Value::Array(items) => items.iter().any(has_control),
                Value::Object(map) => map.iter().any(|(k, v)| control(k) || has_control(v)),
                _ => false,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// Canonicalise any value, parse the canonical bytes with the strict parser:
            /// the same value comes back, and canonicalising it gives the same bytes again.
            /// Ordinary JSON of the value parses strictly to the value too.
            #[test]
            fn parse_canonicalise_round_trips(value in arb_json_from(json_text())) {
                let text = serde_json::to_vec(&value).expect("serialisable");
                prop_assert_eq!(&parse(&text).expect("strict parse of serde output"), &value);
                let once = canonical(&value).expect("encodable");
                let reparsed = parse(&once).expect("canonical JSON without controls is JSON");
                prop_assert_eq!(&reparsed, &value);
                prop_assert_eq!(canonical(&reparsed).expect("encodable"), once);
            }

            /// Canonical JSON writes control characters raw, as securesystemslib does, so its
            /// bytes are strict JSON exactly when no string or key holds one; those that are
            /// round trip.
            #[test]
            fn canonical_is_strict_json_exactly_without_control_characters(
                value in arb_json_from(text_with_controls())
            ) {
                let once = canonical(&value).expect("encodable");
                match parse(&once) {
                    Ok(reparsed) => {
                        prop_assert!(!has_control(&value));
                        prop_assert_eq!(&reparsed, &value);
                        prop_assert_eq!(canonical(&reparsed).expect("encodable"), once);
                    }
                    Err(JsonError::Syntax(_)) => prop_assert!(has_control(&value)),
                    Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                }
            }
        }
    }
}
