//! `POST /topics/{t}[/partitions/{p}]`: produce, through core's routing.
//!
//! The body is parsed without building a JSON tree: keys and values are borrowed as raw JSON
//! text ([`RawValue`]) and, in the JSON format, stored exactly as sent — integers beyond 64
//! bits, key order and duplicate keys survive produce → consume — as zero-copy slices of the
//! request body. The record count is checked while parsing, so a body of millions of tiny
//! records is refused (41302) before it costs memory. A request's peak is about its body plus
//! 600 bytes per record (measured by `fleetwatch bench produce`): the parsed raw records, the
//! routed records and their per-partition batches, the outcomes and the JSON answer.

use crate::error::{ApiError, ApiResult, Code, code_of};
use crate::types::{ProduceOffset, ProduceResponse};
use crate::{AppState, Format, content_format, v2_json};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fleetwatch_core::produce::{ProduceRecord, produce as route_and_append};
use fleetwatch_core::{Header, LogError, Record, TimestampType, TopicConfig, now_ms};
use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

#[derive(Deserialize)]
struct HeaderIn<'a> {
    name: String,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn<'a> {
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow, default)]
    headers: Vec<HeaderIn<'a>>,
}

/// The request, with `records` counted as they are parsed.
struct RequestIn<'a> {
    records: Vec<RecordIn<'a>>,
}

struct Limited {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Limited {
    type Value = Vec<RecordIn<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

/// The marker in the error message that tells a count overflow from a syntax error.
const TOO_MANY: &str = "too many records: more than http.max_records_per_request";

impl<'de> Visitor<'de> for Limited {
    type Value = Vec<RecordIn<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(4096));
        while let Some(r) = seq.next_element::<RecordIn<'de>>()? {
            if out.len() == self.max {
                return Err(serde::de::Error::custom(format!(
                    "{TOO_MANY} ({})",
                    self.max
                )));
            }
            out.push(r);
        }
        Ok(out)
    }
}

struct RequestSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = RequestIn<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = RequestIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with \"records\"")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut records = None;
        while let Some(k) = map.next_key::<&str>()? {
            match k {
                "records" => records = Some(map.next_value_seed(Limited { max: self.max })?),
                // Accepted and ignored, as REST Proxy does for embedded formats.
                "key_schema_id" | "value_schema_id" | "key_schema" | "value_schema" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                other => {
                    return Err(serde::de::Error::unknown_field(
                        other,
                        &["records", "key_schema_id", "value_schema_id"],
                    ));
                }
            }
        }
        Ok(RequestIn {
            records: records.ok_or_else(|| serde::de::Error::missing_field("records"))?,
        })
    }
}

fn is_null(v: Option<&RawValue>) -> bool {
    v.is_none_or(|r| r.get() == "null")
}

/// A key or value as bytes: in the JSON format the raw text as a slice of the body.
fn to_bytes(
    body: &Bytes,
    v: Option<&RawValue>,
    format: Format,
    at: &str,
) -> ApiResult<Option<Bytes>> {
    let Some(raw) = v.filter(|_| !is_null(v)) else {
        return Ok(None);
    };
    match format {
        Format::Json => Ok(Some(body.slice_ref(raw.get().as_bytes()))),
        Format::Binary => {
            let s: &str = serde_json::from_str(raw.get()).map_err(|_| {
                ApiError::conversion(format!(
                    "{at} must be a base64 string in binary format, not {}",
                    raw.get()
                ))
            })?;
            B64.decode(s.as_bytes())
                .map(|b| Some(Bytes::from(b)))
                .map_err(|e| ApiError::conversion(format!("{at} is not valid base64: {e}")))
        }
    }
}

async fn partition_count(state: &AppState, topic: &str) -> ApiResult<()> {
    match state.log.partition_count(topic).await {
        Err(LogError::UnknownTopic(_)) if state.config.auto_create_partitions > 0 => {
            fleetwatch_core::check_client_write(topic, "creation")?;
            state
                .log
                .ensure_topic(
                    topic,
                    TopicConfig::with_partitions(state.config.auto_create_partitions),
                )
                .await?;
            Ok(())
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Parses the JSON of a produce body, counting records as they are parsed (41302 past
/// `max`), and refuses an empty `records`. `what` prefixes the errors.
fn parse_request<'b>(body: &'b Bytes, max: usize, what: &str) -> ApiResult<RequestIn<'b>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = RequestSeed { max }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    let req = match parsed {
        Ok(r) => r,
        Err(e) if e.to_string().contains(TOO_MANY) => {
            return Err(ApiError::new(
                Code::TooManyRecords,
                format!(
                    "{what}: more than http.max_records_per_request ({max}) records in one request"
                ),
            ));
        }
        Err(e) => {
            return Err(ApiError::malformed(format!(
                "{what}: invalid JSON body: {e}"
            )));
        }
    };
    if req.records.is_empty() {
        return Err(ApiError::malformed(
            "records: at least one record is required",
        ));
    }
    Ok(req)
}

/// Turns parsed records into what core's routing takes: keys and values as slices of
/// `body` (JSON) or decoded base64 (binary; header values are base64 in both formats);
/// records without a timestamp get `now`.
fn to_records(
    body: &Bytes,
    req: RequestIn<'_>,
    format: Format,
    fixed_partition: Option<i32>,
    now: i64,
) -> ApiResult<Vec<ProduceRecord>> {
    let mut records = Vec::with_capacity(req.records.len());
    for (i, r) in req.records.iter().enumerate() {
        let key = to_bytes(body, r.key, format, &format!("records[{i}].key"))?;
        let value = to_bytes(body, r.value, format, &format!("records[{i}].value"))?;
        let mut rec_headers = Vec::with_capacity(r.headers.len());
        for (j, h) in r.headers.iter().enumerate() {
            let at = format!("records[{i}].headers[{j}].value");
            // Header values are base64 (or null) in both formats.
            let value = to_bytes(body, h.value, Format::Binary, &at)?;
            rec_headers.push(Header {
                key: h.name.clone(),
                value,
            });
        }
        records.push(ProduceRecord {
            partition: fixed_partition.or(r.partition),
            record: Record {
                key,
                value,
                headers: rec_headers,
                timestamp: r.timestamp.unwrap_or(now),
                timestamp_type: TimestampType::CreateTime,
            },
        });
    }
    Ok(records)
}

/// The pure half of a produce request, without the log: parses a REST Proxy v2 produce
/// `body` in `format` exactly as `POST /topics/{topic}[/partitions/{p}]` does (at most
/// `max_records` records, counted while parsing; `fixed_partition` overrides each record's;
/// `now` for records without a timestamp), with the same errors. The handler runs the
/// topic checks between the parse and the conversion, so for a body that is both
/// unconvertible and aimed at a refused topic it answers with the topic's error.
pub fn parse_produce_body(
    topic: &str,
    body: &Bytes,
    format: Format,
    max_records: usize,
    fixed_partition: Option<i32>,
    now: i64,
) -> ApiResult<Vec<ProduceRecord>> {
    let req = parse_request(body, max_records, &format!("produce to {topic}"))?;
    to_records(body, req, format, fixed_partition, now)
}

pub(crate) async fn produce(
    state: &AppState,
    topic: &str,
    fixed_partition: Option<i32>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let format = content_format(headers)?;
    let what = format!("produce to {topic}");
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::TooLarge,
                format!(
                    "{what}: request body is larger than http.max_request_bytes ({})",
                    state.config.max_request_bytes
                ),
            )
        } else {
            ApiError::malformed(format!("{what}: {e}"))
        }
    })?;
    let req = parse_request(&body, state.config.max_records_per_request, &what)?;
    fleetwatch_core::check_client_write(topic, "produce")?;
    partition_count(state, topic).await?;
    let records = to_records(&body, req, format, fixed_partition, now_ms())?;
    let outcomes = route_and_append(&*state.log, &state.partitioner, topic, records).await?;
    if let Some(e) = outcomes.iter().find_map(|o| o.result.as_ref().err())
        && outcomes.iter().all(|o| o.result.is_err())
    {
        // Nothing was stored: the request as a whole failed.
        return Err(ApiError::new(code_of(e), e.to_string()));
    }
    let offsets = outcomes
        .into_iter()
        .map(|o| match o.result {
            Ok(offset) => ProduceOffset {
                partition: o.partition,
                offset,
                error_code: None,
                error: None,
            },
            Err(e) => ProduceOffset {
                partition: o.partition,
                offset: -1,
                error_code: Some(code_of(&e).number()),
                error: Some(e.to_string()),
            },
        })
        .collect();
    Ok(v2_json(
        StatusCode::OK,
        &ProduceResponse {
            key_schema_id: None,
            value_schema_id: None,
            offsets,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(body: &'static [u8], format: Format, max: usize) -> ApiResult<Vec<ProduceRecord>> {
        parse_produce_body("t", &Bytes::from_static(body), format, max, None, 42)
    }

    #[test]
    fn the_pure_half_parses_and_refuses_like_the_handler() {
        let body =
            Bytes::from_static(br#"{"records":[{"key":"k","value":{"a":1},"partition":2}]}"#);
        let r = parse_produce_body("t", &body, Format::Json, 10, Some(5), 42).unwrap();
        assert_eq!(r[0].partition, Some(5));
        assert_eq!(r[0].record.timestamp, 42);
        assert_eq!(r[0].record.value.as_deref(), Some(&br#"{"a":1}"#[..]));
        let two = br#"{"records":[{"value":"YQ=="},{"value":"Yg=="}]}"#;
        let b = parse(two, Format::Binary, 2).unwrap();
        assert_eq!(b[1].record.value.as_deref(), Some(&b"b"[..]));
        let too_many = parse(two, Format::Binary, 1).unwrap_err();
        assert_eq!(too_many.code(), Code::TooManyRecords);
        assert!(too_many.message().starts_with("produce to t: "));
        let empty = parse(br#"{"records":[]}"#, Format::Json, 9).unwrap_err();
        assert_eq!(empty.code(), Code::MalformedBody);
        let bad = parse(br#"{"records":[{"value":"!"}]}"#, Format::Binary, 9).unwrap_err();
        assert_eq!(bad.code(), Code::Conversion);
        assert!(bad.message().contains("records[0].value"));
    }
}
