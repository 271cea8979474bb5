-- TIMESTAMP over a STRING column with TIMESTAMP_FORMAT (a Java pattern, read in UTC): it is
-- the event time (ROWTIME) of queries and of what they write; a value that does not parse
-- leaves the record's own time.
--@ input trips timestamps
5|V1|{"at":"2026-12-03 10:15:30.123","km":12.5}
6|V2|{"at":"not a time","km":3.0}

--@ statement ok
CREATE STREAM trips (vin STRING KEY, at STRING, km DOUBLE) WITH (kafka_topic='trips', value_format='JSON', timestamp='at', timestamp_format='yyyy-MM-dd HH:mm:ss.SSS');

--@ query
SELECT vin, ROWTIME, km FROM trips;
----
["V1", 1796292930123, 12.5]
["V2", 6, 3.0]

--@ statement ok
CREATE STREAM trips_out WITH (kafka_topic='trips_out', partitions=1) AS SELECT vin, km FROM trips EMIT CHANGES;

--@ output trips_out timestamps
1796292930123|V1|{"KM":12.5}
6|V2|{"KM":3.0}

--@ statement error TIMESTAMP_FORMAT
CREATE STREAM bad_fmt (vin STRING KEY, at STRING) WITH (kafka_topic='trips', value_format='JSON', timestamp='at', timestamp_format='yyyy-MM-dd Q');
