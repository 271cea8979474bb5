//! The seed corpus: valid inputs made by the real encoders, plus edge cases, one list per
//! target. `fuzz/corpus/<target>/` holds them (`FLEETWATCH_FUZZ_WRITE_SEEDS=1 cargo test
//! -p fleetwatch-fuzz --test corpus` rewrites them) next to regression inputs found by
//! fuzzing.

use bytes::Bytes;
use fleetwatch_core::{Header, Record, TimestampType};
use fleetwatch_log::encode;
use fleetwatch_schema::codec::{AvroCodec, put_bytes, put_long};
use fleetwatch_schema::wire;

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target it is for (see [`crate::TARGETS`]).
    pub target: &'static str,
    /// Its file name in the target's corpus folder.
    pub name: &'static str,
    /// Its bytes, mode byte included where the target takes one.
    pub bytes: Vec<u8>,
}

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: (i % 2 == 0).then(|| Bytes::from(format!("car-{i}"))),
            value: (i % 3 != 2).then(|| Bytes::from(vec![b'v'; i * 7])),
            headers: (0..i % 3)
                .map(|h| Header {
                    key: format!("h{h}"),
                    value: (h == 0).then(|| Bytes::from_static(b"x")),
                })
                .collect(),
            timestamp: 1_700_000_000_000 + (i as i64 * 37) - 50,
            timestamp_type: if n == 1 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
        })
        .collect()
}

fn batch(base: i64, n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(&mut buf, base, &records(n));
    buf
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(bytes);
    v
}

fn segment(batches: &[(i64, usize)]) -> Vec<u8> {
    batches.iter().flat_map(|&(b, n)| batch(b, n)).collect()
}

fn avro(id: i32, json: &str) -> Vec<u8> {
    let parsed = crate::avro_schema_for(id);
    let doc: serde_json::Value = match serde_json::from_str(json) {
        Ok(d) => d,
        Err(e) => panic!("seed JSON {json}: {e}"),
    };
    let datum = match AvroCodec::new(parsed).and_then(|c| c.encode_json(&doc)) {
        Ok(d) => d,
        Err(e) => panic!("seed datum {json}: {e}"),
    };
    wire::frame(id, &datum)
}

fn node_chain(levels: usize) -> Vec<u8> {
    let mut d = vec![0x02; levels - 1];
    d.push(0x00);
    wire::frame(0, &d)
}

const CARDATA: &str = r#"{"time":1700000000,"car":"car-7","coolant_temp":88.5,"intake_air_temp":21.0,
"intake_air_flow_speed":13.2,"battery_percentage":77.0,"battery_voltage":12.6,"current_draw":3.1,
"speed":54.0,"engine_vibration_amplitude":0.3,"throttle_pos":0.25,"tire_pressure_1_1":32,
"tire_pressure_1_2":32,"tire_pressure_2_1":31,"tire_pressure_2_2":33,"accelerometer_1_1_value":0.01,
"accelerometer_1_2_value":0.02,"accelerometer_2_1_value":0.03,"accelerometer_2_2_value":0.04,
"control_unit_firmware":2000}"#;

/// A datum of the `Sink` schema, written by hand (JSON → Avro does not cover decimals and
/// durations).
fn sink() -> Vec<u8> {
    let mut d = vec![1]; // b
    put_long(&mut d, -7); // i
    put_long(&mut d, 1_234_567_890_123); // l
    d.extend_from_slice(&1.5f32.to_le_bytes()); // f
    d.extend_from_slice(&(-2.25f64).to_le_bytes()); // d
    put_bytes(&mut d, &[0, 0xff]); // by
    put_bytes(&mut d, "héllo".as_bytes()); // s; n is null: no bytes
    put_long(&mut d, 1); // e = GREEN
    d.extend_from_slice(b"abcd"); // fx
    put_long(&mut d, 2); // arr: a block of two maps
    put_long(&mut d, 3);
    put_bytes(&mut d, b"a");
    put_long(&mut d, 0); // null
    put_bytes(&mut d, b"b");
    put_long(&mut d, 1);
    put_bytes(&mut d, b"x");
    put_bytes(&mut d, b"c");
    put_long(&mut d, 2);
    put_long(&mut d, 5);
    put_long(&mut d, 0); // end of the first map
    put_long(&mut d, 0); // the second map is empty
    put_long(&mut d, 0); // end of arr
    put_long(&mut d, 19_000); // date
    put_long(&mut d, 1_700_000_000_000); // ts
    put_long(&mut d, 1_700_000_000_000_000); // tsu
    put_long(&mut d, 3_600_000); // tm
    put_bytes(&mut d, &[1, 2]); // dec
    d.extend_from_slice(&1234u64.to_be_bytes()); // decf
    put_bytes(&mut d, b"123e4567-e89b-12d3-a456-426614174000"); // uuid
    for x in [1u32, 2, 3] {
        d.extend_from_slice(&x.to_le_bytes()); // dur
    }
    put_long(&mut d, 2); // inner.c = BLUE
    put_long(&mut d, 1); // inner.again: the Four branch
    d.extend_from_slice(b"wxyz");
    wire::frame(2, &d)
}

/// The map branch of the union schema, by hand: the codec writes a map in hash order, so
/// a seed made by it would change from run to run.
fn union_map() -> Vec<u8> {
    let mut d = Vec::new();
    put_long(&mut d, 2);
    put_long(&mut d, 2);
    put_bytes(&mut d, b"a");
    d.extend_from_slice(&1.5f64.to_le_bytes());
    put_bytes(&mut d, b"b");
    d.extend_from_slice(&(-0.0f64).to_le_bytes());
    put_long(&mut d, 0);
    wire::frame(3, &d)
}

/// The array branch of the union schema in one block with a negative count (and its size).
fn negative_block() -> Vec<u8> {
    let mut d = Vec::new();
    put_long(&mut d, 3);
    put_long(&mut d, -2);
    put_long(&mut d, 2);
    put_long(&mut d, 1);
    put_long(&mut d, 2);
    put_long(&mut d, 0);
    wire::frame(3, &d)
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let one = batch(5, 1);
    let three = batch(100, 3);
    let mut torn = three.clone();
    torn.truncate(three.len() - 3);
    let mut flipped = segment(&[(100, 2), (102, 3), (105, 1)]);
    let second = batch(100, 2).len();
    flipped[second + 8..second + 12].copy_from_slice(&0xadde_adde_u32.to_le_bytes());
    let mut garbage_mid = segment(&[(100, 2), (102, 3), (105, 4)]);
    let at = batch(100, 2).len() + 20;
    garbage_mid[at..at + 16].copy_from_slice(&[0x5a; 16]);
    let seed = |target, name, bytes| Seed {
        target,
        name,
        bytes,
    };
    vec![
        // batch: mode byte, then one batch
        seed("batch", "one-record", with_mode(0, &one)),
        seed("batch", "three-records", with_mode(0, &three)),
        seed("batch", "seven-records-sealed", with_mode(1, &batch(0, 7))),
        seed("batch", "unverified-from-middle", with_mode(6, &three)),
        seed("batch", "torn-tail", with_mode(0, &torn)),
        seed("batch", "header-only", with_mode(1, &one[..38])),
        seed("batch", "empty", vec![]),
        // segment: mode byte, then a segment file
        seed(
            "segment",
            "three-batches",
            with_mode(0, &segment(&[(100, 2), (102, 3), (105, 1)])),
        ),
        seed(
            "segment",
            "bounded-every-batch-indexed",
            with_mode(12, &segment(&[(0, 1), (1, 1), (2, 5)])),
        ),
        seed("segment", "flipped-length", with_mode(0, &flipped)),
        seed("segment", "garbage-in-the-middle", with_mode(0, &garbage_mid)),
        seed("segment", "torn-tail", with_mode(0, &torn)),
        seed(
            "segment",
            "offset-gap",
            with_mode(0, &segment(&[(100, 2), (110, 1)])),
        ),
        // avro: framed datums (schema by id modulo the schemas' number)
        seed("avro", "node-1", node_chain(1)),
        seed("avro", "node-100", node_chain(100)),
        seed("avro", "node-101-too-deep", node_chain(101)),
        seed("avro", "cardata", avro(1, CARDATA)),
        seed("avro", "sink", sink()),
        seed("avro", "union-array-negative-block", negative_block()),
        seed("avro", "union-null", avro(3, "null")),
        seed("avro", "union-map", union_map()),
        seed("avro", "union-array", avro(3, r#"{"array":[1,-2,3000000000]}"#)),
        seed(
            "avro",
            "tree",
            avro(4, r#"{"kids":[{"kids":[],"tag":"a"},{"kids":[{"kids":[],"tag":null}],"tag":null}],"tag":"root"}"#),
        ),
        seed("avro", "bad-magic", vec![1, 0, 0, 0, 0]),
        seed("avro", "short", vec![0, 0]),
        // json_text: documents
        seed("json_text", "object", br#"{"a":[1,{"b":"]}"},null],"c":"\"{"}"#.to_vec()),
        seed("json_text", "depth-100", nested(100)),
        seed("json_text", "depth-101", nested(101)),
        seed("json_text", "unbalanced", b"]]]{{[".to_vec()),
        // produce: mode byte (bit 0 binary, bit 1 fixed partition, bits 2.. limit - 1), body
        seed(
            "produce",
            "json",
            with_mode(
                4 << 2,
                br#"{"records":[{"key":"k","value":{"speed":54.2,"big":123456789012345678901234567890}},{"value":[1,2,3],"partition":1,"timestamp":5,"headers":[{"name":"trace","value":"AAE="},{"name":"n","value":null}]}]}"#,
            ),
        ),
        seed(
            "produce",
            "binary",
            with_mode(
                (4 << 2) | 1,
                br#"{"records":[{"key":"a2V5","value":"dmFsdWU="},{"value":null}],"value_schema_id":3}"#,
            ),
        ),
        seed(
            "produce",
            "fixed-partition",
            with_mode(2, br#"{"records":[{"value":"x","partition":7}]}"#),
        ),
        seed(
            "produce",
            "too-many",
            with_mode(1 << 2, br#"{"records":[{"value":1},{"value":2},{"value":3}]}"#),
        ),
        seed("produce", "empty-records", with_mode(0, br#"{"records":[]}"#)),
        // mqtt: a client's byte stream, CONNECT first
        seed(
            "mqtt",
            "v311-session",
            mqtt(fleetwatch_ingest::packet::Version::V3_1_1, mqtt_session(fleetwatch_ingest::packet::Version::V3_1_1)),
        ),
        seed(
            "mqtt",
            "v5-session",
            mqtt(fleetwatch_ingest::packet::Version::V5, mqtt_session(fleetwatch_ingest::packet::Version::V5)),
        ),
        seed("mqtt", "v31-connect", b"\x10\x10\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x02c1".to_vec()),
        seed("mqtt", "publish-before-connect", b"\x30\x05\x00\x01ahi".to_vec()),
        seed("mqtt", "oversized-length", b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x30\xff\xff\xff\x7f".to_vec()),
        seed("mqtt", "truncated-varint", b"\x10\xff\xff\xff\xff\xff".to_vec()),
        seed(
            "produce",
            "unknown-field",
            with_mode(0, br#"{"records":[{"value":1,"oops":2}]}"#),
        ),
        seed(
            "produce",
            "bad-base64",
            with_mode(1, br#"{"records":[{"value":"not base64!"}]}"#),
        ),
        seed(
            "produce",
            "duplicate-keys",
            with_mode(0, br#"{"records":[{"value":{"a":1,"a":2}}],"records":[{"value":3}]}"#),
        ),
    ]
}

/// A client's byte stream: these packets, encoded for `version`.
fn mqtt(
    version: fleetwatch_ingest::packet::Version,
    packets: Vec<fleetwatch_ingest::packet::Packet>,
) -> Vec<u8> {
    let mut c = fleetwatch_ingest::packet::Codec::client(version, u32::MAX);
    let mut out = bytes::BytesMut::new();
    for p in packets {
        if let Err(e) = c.encode(p, &mut out) {
            panic!("seed packet does not encode: {e}");
        }
    }
    out.to_vec()
}

fn mqtt_session(
    version: fleetwatch_ingest::packet::Version,
) -> Vec<fleetwatch_ingest::packet::Packet> {
    use fleetwatch_ingest::packet::{Connect, Packet, Publish, QoS, SubscribeFilter, Will};
    use std::num::NonZeroU16;
    let id = NonZeroU16::MIN;
    let v5 = version == fleetwatch_ingest::packet::Version::V5;
    let publish = |qos, topic: &str, alias: Option<u16>| {
        Packet::Publish(Box::new(Publish {
            topic: topic.into(),
            payload: bytes::Bytes::from_static(b"{\"speed\":88.5,\"rpm\":2500}"),
            qos,
            retain: false,
            dup: false,
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            topic_alias: alias.and_then(NonZeroU16::new),
            user_properties: if v5 {
                vec![("trip".into(), "42".into())]
            } else {
                Vec::new()
            },
            content_type: None,
        }))
    };
    vec![
        Packet::Connect(Box::new(Connect {
            version,
            client_id: "car-1".into(),
            clean_start: false,
            keep_alive: 30,
            username: Some("car-1".into()),
            password: Some(bytes::Bytes::from_static(b"secret")),
            will: Some(Will {
                topic: "fleet/car-1/status".into(),
                payload: bytes::Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: false,
                delay_s: 0,
                user_properties: Vec::new(),
            }),
            session_expiry_s: if v5 { 3600 } else { u32::MAX },
            receive_maximum: if v5 { 100 } else { u16::MAX },
            max_packet_size: None,
            topic_alias_max: 0,
        })),
        publish(QoS::AtMostOnce, "fleet/car-1/telemetry", None),
        publish(QoS::AtLeastOnce, "fleet/car-1/telemetry", v5.then_some(3)),
        publish(QoS::ExactlyOnce, "fleet/car-1/telemetry", None),
        Packet::PubRel(id, 0),
        Packet::Subscribe(
            id,
            vec![SubscribeFilter {
                filter: "fleet/car-1/alerts".into(),
                qos: QoS::AtLeastOnce,
                retain_handling: 0,
            }],
        ),
        Packet::PubAck(id, 0),
        Packet::Unsubscribe(id, vec!["fleet/car-1/alerts".into()]),
        Packet::PingReq,
        Packet::Disconnect(0, None),
    ]
}

fn nested(depth: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..depth {
        v.extend_from_slice(if i % 2 == 0 { b"[" } else { b"{\"k\":" });
    }
    v.push(b'1');
    for i in (0..depth).rev() {
        v.push(if i % 2 == 0 { b']' } else { b'}' });
    }
    v
}
