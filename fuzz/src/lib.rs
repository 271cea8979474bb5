//! # fleetwatch-fuzz — coverage-guided fuzz targets
//!
//! Owns the fuzz targets of fleetwatch's decoders and parsers of untrusted bytes, each a
//! plain function that must never panic, hang or allocate without bound on any input, and
//! checks a property of what it decodes (a round trip, an agreement between two checks):
//!
//! | target | code under test |
//! |---|---|
//! | [`target_batch`] | the embedded log's batch decoder (`fleetwatch_log::decode_header`, `decode_records`, `encode`) |
//! | [`target_segment`] | a segment's recovery scan and resynchronisation over a byte buffer (`fleetwatch_log::fuzzing`) |
//! | [`target_avro`] | the Schema Registry wire format (`fleetwatch_schema::wire`) and the bounded Avro datum reader (`datum::decode`) against fixed schemas, with encode round trips |
//! | [`target_json_text`] | `datum::check_json_text` against `datum::check_json` of the parsed document |
//! | [`target_produce`] | REST Proxy v2 produce bodies, JSON and binary (`fleetwatch_rest::parse_produce_body`) |
//! | [`target_mqtt`] | the MQTT proxy's packet decoder (`fleetwatch_ingest::packet::Codec` over `rmqtt-codec`), 3.1.1 and 5.0, with a PUBLISH re-encode round trip |
//!
//! The committed corpora under `fuzz/corpus/<target>/` (seeds from [`seeds`], made by the
//! real encoders, and regression inputs) are replayed by `cargo test` on stable, with a
//! bounded number of pseudo-random and mutated inputs; the `afl` feature builds one AFL++
//! binary per target (see `fuzz/README.md`).
//!
//! It calls only the public (or `#[doc(hidden)]` fuzzing) entry points of the library
//! crates; it must not know their internals, and nothing in fleetwatch depends on it.

pub mod seeds;

use bytes::Bytes;
use fleetwatch_core::Record;
use fleetwatch_log::fuzzing::{HEADER_LEN, MIN_RECORD_LEN, OffsetBound, PREFIX_LEN};
use fleetwatch_log::{decode_header, decode_records, encode, encoded_len};
use fleetwatch_rest::Format;
use fleetwatch_schema::avro::{self, ParsedAvro};
use fleetwatch_schema::codec::{AvroCodec, avro_to_json};
use fleetwatch_schema::{datum, wire};
use serde_json::Value as Json;
use std::sync::OnceLock;

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name (the name is its corpus folder and, prefixed `afl_`, its binary).
pub const TARGETS: &[(&str, Target)] = &[
    ("batch", target_batch),
    ("segment", target_segment),
    ("avro", target_avro),
    ("json_text", target_json_text),
    ("produce", target_produce),
    ("mqtt", target_mqtt),
];

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

/// Rewrites the length and CRC of the batch at the start of `buf` to cover all of it, so
/// that mutations reach the records instead of stopping at the checksum.
fn seal_batch(buf: &mut [u8]) {
    if buf.len() < HEADER_LEN {
        return;
    }
    let len = u32::try_from(buf.len() - PREFIX_LEN).unwrap_or(u32::MAX);
    buf[8..12].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&buf[16..]);
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the CRC of every batch whose length fits, walking the buffer by lengths.
fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while pos + HEADER_LEN <= buf.len() {
        let Some(total) = fleetwatch_log::fuzzing::peek_len(&buf[pos..]) else {
            return;
        };
        if total < HEADER_LEN || total > buf.len() - pos {
            return;
        }
        let crc = crc32c::crc32c(&buf[pos + 16..pos + total]);
        buf[pos + 12..pos + 16].copy_from_slice(&crc.to_le_bytes());
        pos += total;
    }
}

/// The batch decoder. Byte 0 is a mode: bit 0 seals the batch (its length and CRC are
/// rewritten to cover the rest), bit 1 skips CRC verification (as the read path does),
/// bit 2 decodes from the middle offset of the batch on; the rest is the batch. A batch that
/// decodes re-encodes to one that decodes to the same records; the resync's header check
/// runs on the same bytes.
pub fn target_batch(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 {
        seal_batch(&mut buf);
    }
    let bound = OffsetBound {
        min_base: buf
            .get(..8)
            .map_or(0, le_i64)
            .saturating_sub(i64::from(mode)),
        per_byte: mode & 8 == 0,
        max_next: (mode & 16 == 0).then_some(i64::MAX),
    };
    let len = buf.len() as u64;
    if let Some(total) =
        fleetwatch_log::fuzzing::plausible_header(&buf, u64::from(mode) * 4, len, &bound)
    {
        assert!(total as u64 <= len, "plausible batch runs past the buffer");
    }
    let Ok(header) = decode_header(&buf, mode & 2 == 0) else {
        return;
    };
    assert!(header.total_len >= HEADER_LEN && header.total_len <= buf.len());
    assert!(header.record_count >= 1);
    let min_offset = if mode & 4 == 0 {
        i64::MIN
    } else {
        header
            .base_offset
            .saturating_add(i64::from(header.record_count / 2))
    };
    let batch = Bytes::from(buf);
    let mut out = Vec::new();
    if decode_records(batch.clone(), &header, 3, min_offset, &mut out).is_err() {
        return;
    }
    assert!(out.len() <= header.record_count as usize);
    for (i, c) in out.iter().enumerate() {
        assert_eq!(c.partition, 3);
        assert!(c.offset >= min_offset);
        if i > 0 {
            assert_eq!(c.offset, out[i - 1].offset + 1, "offsets are consecutive");
        }
        for b in [&c.record.key, &c.record.value].into_iter().flatten() {
            let inside = batch.as_ptr_range();
            assert!(
                inside.contains(&b.as_ptr()) || b.is_empty(),
                "keys and values are slices of the batch"
            );
        }
    }
    let Some(first) = out.first() else {
        return;
    };
    let records: Vec<Record> = out.iter().map(|c| c.record.clone()).collect();
    let mut again = Vec::new();
    encode(&mut again, first.offset, &records);
    assert_eq!(again.len(), encoded_len(&records, records[0].timestamp));
    let h2 = match decode_header(&again, true) {
        Ok(h) => h,
        Err(e) => panic!("a re-encoded batch does not decode: {e}"),
    };
    assert_eq!(h2.record_count as usize, records.len());
    assert_eq!(h2.total_len, again.len());
    let mut back = Vec::new();
    if let Err(e) = decode_records(Bytes::from(again), &h2, 3, i64::MIN, &mut back) {
        panic!("the records of a re-encoded batch do not decode: {e}");
    }
    let back: Vec<Record> = back.into_iter().map(|c| c.record).collect();
    assert_eq!(back, records, "batch round trip");
}

/// A segment's recovery over a byte buffer. Byte 0 is a mode: bit 0 fixes the CRC of every
/// batch whose length fits, bit 1 starts the segment at offset 0 (else at the first
/// batch's base offset), bit 2 bounds it by a next segment, bit 3 indexes every batch; the
/// rest is the segment file. What recovery keeps scans, in order, outside the damage, with
/// offsets that only grow.
pub fn target_segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut buf);
    }
    let base = if mode & 2 == 0 && buf.len() >= 8 {
        le_i64(&buf)
    } else {
        0
    };
    let len = buf.len() as u64;
    let max_next =
        (mode & 4 != 0).then(|| base.saturating_add((buf.len() / MIN_RECORD_LEN) as i64));
    let interval = if mode & 8 == 0 { 4096 } else { 1 };
    let r = match fleetwatch_log::fuzzing::recover_bytes(buf, base, max_next, interval) {
        Ok(r) => r,
        Err(e) => panic!("recovery of an in-memory segment failed: {e}"),
    };
    assert!(r.size <= len);
    let mut pos = 0;
    let mut next = base;
    for &(p, b, n, total) in &r.batches {
        assert!(p >= pos, "batches in order, not overlapping");
        assert!(b >= next, "offsets only grow: batch at {b} after {next}");
        assert!(n > b);
        let end = p + total as u64;
        assert!(end <= r.size);
        for &(s, e) in &r.damage {
            assert!(
                end <= s || p >= e,
                "batch {p}..{end} overlaps damage {s}..{e}"
            );
        }
        pos = end;
        next = n;
    }
    assert_eq!(r.next_offset, next, "next offset is the last batch's");
    assert_eq!(r.batches.last().map_or(0, |b| b.0 + b.3 as u64), r.size);
    for &(s, e) in &r.damage {
        assert!(s < e && e <= len);
    }
    if let Some((s, e)) = r.tail {
        assert!(s >= r.size && e == len);
    }
}

/// Schemas [`target_avro`] decodes against, picked by the framed schema id (modulo their
/// number): a recursive list, `schemas/cardata-v1.avsc`, every Avro type and the common
/// logical types, a top-level union and a recursive tree through arrays.
pub const AVRO_SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
    include_str!("../../schemas/cardata-v1.avsc"),
    r#"{"type":"record","name":"Sink","namespace":"fuzz","fields":[
        {"name":"b","type":"boolean"},
        {"name":"i","type":"int"},
        {"name":"l","type":"long"},
        {"name":"f","type":"float"},
        {"name":"d","type":"double"},
        {"name":"by","type":"bytes"},
        {"name":"s","type":"string"},
        {"name":"n","type":"null"},
        {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
        {"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
        {"name":"arr","type":{"type":"array","items":{"type":"map","values":["null","string","long"]}}},
        {"name":"date","type":{"type":"int","logicalType":"date"}},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"decf","type":{"type":"fixed","name":"Dec8","size":8,"logicalType":"decimal","precision":18,"scale":4}},
        {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
        {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
        {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"c","type":"Color"},{"name":"again","type":["null","Four"]}]}}
    ]}"#,
    r#"["null","string",{"type":"map","values":"double"},{"type":"array","items":"long"}]"#,
    r#"{"type":"record","name":"Tree","fields":[{"name":"kids","type":{"type":"array","items":"Tree"}},{"name":"tag","type":["null","string"]}]}"#,
];

/// [`AVRO_SCHEMAS`], parsed once.
pub fn avro_schemas() -> &'static [ParsedAvro] {
    static PARSED: OnceLock<Vec<ParsedAvro>> = OnceLock::new();
    PARSED.get_or_init(|| {
        AVRO_SCHEMAS
            .iter()
            .map(|t| match avro::parse(t, &[]) {
                Ok(p) => p,
                Err(e) => panic!("fuzz schema does not parse: {e}: {t}"),
            })
            .collect()
    })
}

/// Longest datum [`target_avro`] also encodes with `apache-avro`'s validating writer.
pub const SHALLOW_DATUM: usize = 24;

/// Which of [`avro_schemas`] a framed schema id selects.
pub fn avro_schema_for(id: i32) -> &'static ParsedAvro {
    let all = avro_schemas();
    &all[id.rem_euclid(all.len() as i32) as usize]
}

/// The wire format and the Avro datum reader: the input is a framed message (magic byte,
/// schema id, datum). A frame that splits re-frames to the same bytes; a datum that
/// decodes encodes again, and that encoding decodes and re-encodes to itself.
pub fn target_avro(data: &[u8]) {
    let Ok((id, payload)) = wire::unframe(data) else {
        return;
    };
    assert_eq!(wire::frame(id, payload), data, "wire round trip");
    let parsed = avro_schema_for(id);
    // The direct JSON reader accepts exactly what the value reader accepts, and gives the
    // JSON form of the same value.
    let direct = datum::decode_json(parsed, payload);
    let Ok(value) = datum::decode(parsed, payload) else {
        assert!(
            direct.is_err(),
            "decode_json accepted a datum decode refused"
        );
        return;
    };
    match (direct, fleetwatch_schema::codec::avro_to_json(&value)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode_json differs from avro_to_json(decode)"),
        (a, b) => panic!("decode_json {a:?} vs avro_to_json {b:?}"),
    }
    assert!(
        datum::check_value(&value).is_ok(),
        "a decoded value is within the depth limit"
    );
    let codec = match AvroCodec::new(parsed) {
        Ok(c) => c,
        Err(e) => panic!("codec of a fuzz schema: {e}"),
    };
    // The crate's fast writer (the hot path) must handle every value its reader accepts.
    let mut first = Vec::new();
    if let Err(e) = codec.encode_trusted(&value, &mut first) {
        panic!("a decoded value does not encode: {e}");
    }
    let again = match codec.decode(&first) {
        Ok(v) => v,
        Err(e) => panic!("an encoded value does not decode: {e}"),
    };
    let mut second = Vec::new();
    if let Err(e) = codec.encode_trusted(&again, &mut second) {
        panic!("a re-decoded value does not encode: {e}");
    }
    // Maps are hash maps (their order on the wire is not kept), and NaN is not equal to
    // itself: compare lengths always, values when they are comparable.
    assert_eq!(first.len(), second.len(), "Avro encode/decode round trip");
    #[allow(clippy::eq_op)]
    if value == value {
        assert_eq!(again, value, "Avro decode/encode/decode round trip");
    }
    // `apache-avro`'s validating writer (`AvroCodec::encode`) recurses with large frames: a
    // 100-deep value (within `MAX_DEPTH`) overflows a 2 MiB thread in debug builds (see
    // fuzz/README.md), so it runs only on short datums (depth ≤ bytes + 1).
    if payload.len() <= SHALLOW_DATUM {
        let mut checked = Vec::new();
        if let Err(e) = codec.encode(&value, &mut checked) {
            panic!("a decoded value does not pass apache-avro's writer: {e}");
        }
        assert_eq!(
            checked.len(),
            first.len(),
            "both writers write as many bytes"
        );
    }
    if let Ok(json) = avro_to_json(&value) {
        // JSON is lossy for some values (NaN, bytes): only that it neither panics nor
        // nests deeper than the limit.
        assert!(datum::check_json(&json).is_ok());
        let _ = codec.encode_json(&json);
    }
}

/// The JSON nesting check on text: on a document `serde_json` parses, it agrees with the
/// check of the parsed value.
pub fn target_json_text(data: &[u8]) {
    let by_text = datum::check_json_text(data);
    if let Ok(doc) = serde_json::from_slice::<Json>(data) {
        let by_value = datum::check_json(&doc);
        assert_eq!(
            by_text.is_ok(),
            by_value.is_ok(),
            "text check {by_text:?} vs value check {by_value:?}"
        );
    }
}

/// The timestamp [`target_produce`] gives records without one.
pub const PRODUCE_NOW: i64 = 1_700_000_000_000;

/// The REST produce body parser. Byte 0 is a mode: bit 0 the binary format (else JSON), bit
/// 1 a fixed partition (3), bits 2–7 the record limit minus one; the rest is the body.
/// Accepted records respect the limit and the fixed partition; in the JSON format keys and
/// values are JSON text borrowed from the body.
pub fn target_produce(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let format = if mode & 1 == 0 {
        Format::Json
    } else {
        Format::Binary
    };
    let fixed = (mode & 2 != 0).then_some(3);
    let max = 1 + usize::from(mode >> 2);
    let body = Bytes::copy_from_slice(rest);
    let Ok(records) =
        fleetwatch_rest::parse_produce_body("fuzz", &body, format, max, fixed, PRODUCE_NOW)
    else {
        return;
    };
    assert!(!records.is_empty() && records.len() <= max);
    let inside = body.as_ptr_range();
    for r in &records {
        if fixed.is_some() {
            assert_eq!(r.partition, fixed);
        }
        if format == Format::Json {
            for b in [&r.record.key, &r.record.value].into_iter().flatten() {
                assert!(
                    inside.contains(&b.as_ptr()),
                    "JSON is borrowed from the body"
                );
                assert!(
                    serde_json::from_slice::<Box<serde_json::value::RawValue>>(b).is_ok(),
                    "a JSON key or value is JSON"
                );
                assert_ne!(&b[..], b"null");
            }
        }
    }
}

/// Largest packet the MQTT target's decoder accepts.
pub const MQTT_MAX_PACKET: u32 = 8192;

/// The MQTT proxy's decoder on a stream of bytes from a client: the first packet picks the
/// version (CONNECT), then every whole packet is decoded until an error or the end. Each
/// decoded PUBLISH must encode again and decode to the same packet.
pub fn target_mqtt(data: &[u8]) {
    use fleetwatch_ingest::packet::{Codec, Packet};
    let mut buf = bytes::BytesMut::from(data);
    let mut server = Codec::new(MQTT_MAX_PACKET);
    for _ in 0..256 {
        let packet = match server.decode(&mut buf) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => return,
        };
        let Some(version) = server.version() else {
            return;
        };
        if let Packet::Publish(_) = &packet {
            let mut client = Codec::client(version, u32::MAX);
            let mut wire = bytes::BytesMut::new();
            if let Err(e) = client.encode(packet.clone(), &mut wire) {
                panic!("a decoded PUBLISH does not encode: {e}");
            }
            let mut again = Codec::client(version, u32::MAX);
            let back = match again.decode(&mut wire) {
                Ok(b) => b,
                Err(e) => panic!("a re-encoded PUBLISH does not decode: {e}"),
            };
            assert_eq!(back.as_ref(), Some(&packet), "PUBLISH round trip");
            assert!(wire.is_empty(), "nothing left over");
        }
    }
}
