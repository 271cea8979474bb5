-- CREATE STREAM (columns, KEY, WITH properties), SHOW, DESCRIBE [EXTENDED], DESCRIBE
-- FUNCTION, DROP [IF EXISTS] [DELETE TOPIC].
--@ statement ok
CREATE STREAM pay (vin STRING KEY, amount DOUBLE, ts BIGINT) WITH (KAFKA_TOPIC='pay', VALUE_FORMAT='JSON', KEY_FORMAT='KAFKA', PARTITIONS=3, TIMESTAMP='ts');
----
/0/@type = "currentStatus"
/0/commandStatus/status = "SUCCESS"
/0/commandStatus/message = "Stream created"
/0/commandId = "stream/`PAY`/create"

--@ statement ok
CREATE STREAM IF NOT EXISTS pay (vin STRING KEY, amount DOUBLE) WITH (kafka_topic='pay', value_format='JSON');
----
/0/commandStatus/message ~ already exists

--@ statement error A stream with the same name already exists
CREATE STREAM pay (vin STRING KEY) WITH (kafka_topic='pay', value_format='JSON');

--@ statement ok
CREATE OR REPLACE STREAM pay (vin STRING KEY, amount DOUBLE, ts BIGINT) WITH (kafka_topic='pay', value_format='JSON', timestamp='ts');

--@ statement error Missing required property "KAFKA_TOPIC"
CREATE STREAM x (a INT) WITH (value_format='JSON');

--@ statement error VALUE_FORMAT
CREATE STREAM x (a INT) WITH (kafka_topic='x');

--@ statement error PARTITIONS
CREATE STREAM x (a INT) WITH (kafka_topic='no_such_topic', value_format='JSON');

--@ statement error The TIMESTAMP column set in the WITH clause does not exist in the schema: 'NOPE'
CREATE STREAM x (a INT) WITH (kafka_topic='x', value_format='JSON', partitions=1, timestamp='nope');

--@ statement error unknown property BOGUS
CREATE STREAM x (a INT) WITH (kafka_topic='x', value_format='JSON', partitions=1, bogus=1);

--@ statement error ROWTIME is a reserved column name
CREATE STREAM x (rowtime BIGINT) WITH (kafka_topic='x', value_format='JSON', partitions=1);

-- The TIMESTAMP column is the record time (ROWTIME).
--@ input pay
V1|{"AMOUNT":1.5,"TS":1600000000000}

--@ query
SELECT vin, ROWTIME, amount FROM pay;
----
["V1", 1600000000000, 1.5]

-- The failing CREATE STREAM x … PARTITIONS=1 statements above left no topic behind: a
-- missing topic is created only once every check has passed.
--@ statement ok
SHOW STREAMS; LIST STREAMS; SHOW TABLES; SHOW TOPICS; SHOW PROPERTIES;
----
/0/@type = "streams"
/0/streams # 1
/0/streams/0 = {"type": "STREAM", "name": "PAY", "topic": "pay", "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false}
/1/streams # 1
/2/@type = "tables"
/2/tables # 0
/3/@type = "kafka_topics"
/3/topics # 2
/3/topics/[name=pay]/name = "pay"
/3/topics/[name=pay]/replicaInfo = [1, 1, 1]
/3/topics/[name=default_ksql_processing_log]/replicaInfo = [1]
/4/properties/[name=ksql.service.id]/value = "default_"

--@ statement ok
SHOW TOPICS EXTENDED;
----
/0/topics/[name=_confluent-ksql-default__command_topic]/replicaInfo = [1]

--@ statement ok
DESCRIBE pay; DESCRIBE EXTENDED pay; DESCRIBE STREAMS;
----
/0/@type = "sourceDescription"
/0/sourceDescription/name = "PAY"
/0/sourceDescription/type = "STREAM"
/0/sourceDescription/timestamp = "TS"
/0/sourceDescription/topic = "pay"
/0/sourceDescription/partitions = 3
/0/sourceDescription/fields # 3
/0/sourceDescription/fields/0 = {"name": "VIN", "type": "KEY", "schema": {"type": "STRING", "fields": null, "memberSchema": null}}
/0/sourceDescription/fields/1/schema/type = "DOUBLE"
/0/sourceDescription/fields/2/schema/type = "BIGINT"
/0/sourceDescription/extended = false
/1/sourceDescription/extended = true
/2/@type = "source_descriptions"
/2/sourceDescriptions # 1

--@ statement error PAY2 does not exist
DESCRIBE pay2;

--@ statement ok
SHOW FUNCTIONS; DESCRIBE FUNCTION mask_keep_left; DESCRIBE FUNCTION HASH_PII;
----
/0/@type = "function_names"
/0/functions/[name=MASK]/category = "STRING"
/0/functions/[name=MASK]/type = "SCALAR"
/0/functions/[name=GEO_DISTANCE]/category = "GEOGRAPHIC"
/1/@type = "describe_function"
/1/name = "MASK_KEEP_LEFT"
/1/type = "SCALAR"
/1/functions/0/argumentTypes = ["VARCHAR", "INT"]
/1/functions/0/returnType = "VARCHAR"
/1/functions # 5
/2/functions/1/argumentTypes = ["BYTES", "VARCHAR"]

--@ statement error Can't find any functions with the name 'NOPE'
DESCRIBE FUNCTION nope;

-- DROP: IF EXISTS, DELETE TOPIC, the wrong kind.
--@ statement ok
DROP STREAM IF EXISTS nothing_here;
----
/0/commandStatus/message = "Source `NOTHING_HERE` does not exist."

--@ statement error Stream NOTHING_HERE does not exist.
DROP STREAM nothing_here;

--@ statement error Incompatible data source type is STREAM, but statement was DROP TABLE
DROP TABLE pay;

--@ statement ok
CREATE STREAM pay_copy (vin STRING KEY, amount DOUBLE) WITH (kafka_topic='pay', value_format='JSON');

--@ statement ok
DROP STREAM pay_copy;
----
/0/commandStatus/message = "Source `PAY_COPY` (topic: pay) was dropped."

--@ only embedded fleetwatch-kafka on tansu: deleting a topic that was read (the pull query above) crashes the process with SIGSEGV in librdkafka (rd_kafka_metadata_cache_find from rd_kafka_metadata_update_op on the rdk:main thread)
--@ statement ok
DROP STREAM pay DELETE TOPIC; SHOW STREAMS; SHOW TOPICS;
----
/1/streams # 0
/2/topics !~ "name":"pay"
/2/topics/[name=default_ksql_processing_log]/replicaInfo = [1]

-- A restart replays the command topic: nothing comes back.
--@ restart commands=5
--@ statement ok
SHOW STREAMS;
----
/0/streams # 0
