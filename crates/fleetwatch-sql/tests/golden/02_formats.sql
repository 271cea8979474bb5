-- Value and key formats: JSON (wrapped and WRAP_SINGLE_VALUE=false), DELIMITED with
-- VALUE_DELIMITER, KAFKA (binary, big-endian), a JSON key; converting between them.
--@ statement ok
CREATE STREAM csv (id STRING KEY, name STRING, n INT, x DOUBLE) WITH (kafka_topic='csv', value_format='DELIMITED', partitions=1);

--@ input csv
a|Ann,1,1.5
b|Bob,,2
c|"Smith, Jo",3,0.25

--@ query ordered
SELECT id, name, n, x FROM csv;
----
["a", "Ann", 1, 1.5]
["b", "Bob", null, 2.0]
["c", "Smith, Jo", 3, 0.25]

--@ statement ok
CREATE STREAM tsv (id STRING KEY, name STRING, n INT) WITH (kafka_topic='tsv', value_format='DELIMITED', value_delimiter='TAB', partitions=1);
CREATE STREAM psv (id STRING KEY, name STRING, n INT) WITH (kafka_topic='psv', value_format='DELIMITED', value_delimiter='|', partitions=1);

--@ input tsv
a|Ann	7

--@ input psv
a|Ann|8

--@ query
SELECT name, n FROM tsv;
----
["Ann", 7]

--@ query
SELECT name, n FROM psv;
----
["Ann", 8]

-- KAFKA: one column, binary big-endian; an INT key.
--@ statement ok
CREATE STREAM raw (k INT KEY, v BIGINT) WITH (kafka_topic='raw', value_format='KAFKA', key_format='KAFKA', partitions=1);

--@ input raw
hex:0000002a|hex:00000000000003e8

--@ query
SELECT k, v, v + 1 FROM raw;
----
[42, 1000, 1001]

-- JSON with WRAP_SINGLE_VALUE=false: the value is the bare column.
--@ statement ok
CREATE STREAM bare (id STRING KEY, temp DOUBLE) WITH (kafka_topic='bare', value_format='JSON', wrap_single_value=false, partitions=1);

--@ input bare
a|21.5

--@ query
SELECT id, temp FROM bare;
----
["a", 21.5]

-- Output formats: a CSAS to DELIMITED, to KAFKA, to unwrapped and wrapped JSON, a JSON key (the value
-- format is the source's unless given).
--@ statement ok
CREATE STREAM csv_out WITH (kafka_topic='csv_out', value_format='DELIMITED') AS SELECT id, name, n FROM csv EMIT CHANGES;
CREATE STREAM kafka_out WITH (kafka_topic='kafka_out', value_format='KAFKA') AS SELECT k, v * 2 AS v2 FROM raw EMIT CHANGES;
CREATE STREAM bare_out WITH (kafka_topic='bare_out', wrap_single_value=false) AS SELECT id, temp FROM bare EMIT CHANGES;
CREATE STREAM wrapped_out WITH (kafka_topic='wrapped_out', value_format='JSON') AS SELECT id, temp FROM bare EMIT CHANGES;
CREATE STREAM json_key WITH (kafka_topic='json_key', key_format='JSON') AS SELECT id, name FROM csv EMIT CHANGES;

--@ output csv_out
a|Ann,1
b|Bob,
c|"Smith, Jo",3

--@ output kafka_out
hex:0000002a|hex:00000000000007d0

--@ output bare_out
a|21.5

--@ output wrapped_out
a|{"TEMP":21.5}

--@ output json_key
"a"|Ann
"b"|Bob
"c"|"Smith, Jo"

-- Undecodable records go to the processing log, once per query reading them (the two
-- persistent queries on csv and the pull query); the others are read.
--@ input csv
d|Dan,notanumber,1
e|Eve,5,5

--@ query
SELECT id FROM csv WHERE n = 5;
----
["e"]

--@ processing-log 3
"query":"CSAS_CSV_OUT_1"
"query":"CSAS_JSON_KEY_5"
"errorMessage":"CSV: value: N: cannot convert \"notanumber\" to INT","offset":3,"partition":0,"query":"transient_
