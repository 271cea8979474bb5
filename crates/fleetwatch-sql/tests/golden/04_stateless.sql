-- Stateless semantics: projections and aliases, WHERE, CASE, CAST, structs (a->b), arrays
-- ([1] is the first element), maps (['k']), NULL handling, pseudo-columns.
--@ statement ok
CREATE STREAM cars (vin STRING KEY, speed DOUBLE, gear INT, engine STRUCT<rpm INT, temp DOUBLE, ecu STRUCT<ver STRING>>, wheels ARRAY<DOUBLE>, attrs MAP<STRING, STRING>, ok BOOLEAN) WITH (kafka_topic='cars', value_format='JSON', partitions=2);

--@ input cars partition=0 timestamps
1000|V1|{"SPEED":88.5,"GEAR":4,"ENGINE":{"RPM":3000,"TEMP":90.5,"ECU":{"VER":"1.2"}},"WHEELS":[2.1,2.2,2.0,2.3],"ATTRS":{"color":"red"},"OK":true}
2000|V2|{"SPEED":0,"GEAR":0,"ENGINE":null,"WHEELS":null,"ATTRS":null,"OK":false}

--@ input cars partition=1 timestamps
3000|V3|{"SPEED":130.0,"GEAR":6,"ENGINE":{"RPM":5000,"TEMP":110.0,"ECU":null},"WHEELS":[1.9],"ATTRS":{"color":"blue","seats":"2"},"OK":null}

--@ query
SELECT vin, speed * 2 AS double_speed, gear + 1, speed / 2, gear % 4, -speed FROM cars;
----
["V1", 177.0, 5, 44.25, 0, -88.5]
["V2", 0.0, 1, 0.0, 0, -0.0]
["V3", 260.0, 7, 65.0, 2, -130.0]

--@ query
SELECT vin FROM cars WHERE speed > 50 AND gear >= 4 AND NOT (vin = 'V3');
----
["V1"]

--@ query
SELECT vin FROM cars WHERE ok IS NULL OR vin IN ('V2') OR vin LIKE 'X%' OR speed BETWEEN 80 AND 90;
----
["V1"]
["V2"]
["V3"]

--@ query
SELECT vin, CASE WHEN speed > 100 THEN 'fast' WHEN speed > 0 THEN 'moving' ELSE 'stopped' END, CASE gear WHEN 0 THEN 'park' ELSE 'drive' END FROM cars;
----
["V1", "moving", "drive"]
["V2", "stopped", "park"]
["V3", "fast", "drive"]

--@ query
SELECT vin, CAST(speed AS INT), CAST(gear AS STRING), CAST('42' AS BIGINT), CAST(gear AS DOUBLE), CAST('true' AS BOOLEAN), CAST(speed AS DECIMAL(5, 1)) FROM cars WHERE vin = 'V1';
----
["V1", 88, "4", 42, 4.0, true, 88.5]

--@ query
SELECT vin, engine->rpm, engine->ecu->ver, wheels[1], wheels[4], wheels[5], attrs['color'], attrs['none'] FROM cars;
----
["V1", 3000, "1.2", 2.1, 2.3, null, "red", null]
["V2", null, null, null, null, null, null, null]
["V3", 5000, null, 1.9, null, null, "blue", null]

-- NULL: comparisons with NULL are not true; arithmetic with NULL is NULL.
--@ query
SELECT vin, engine->rpm + 1, engine->rpm > 0, ok = true, engine IS NULL FROM cars;
----
["V1", 3001, true, true, false]
["V2", null, null, false, true]
["V3", 5001, true, null, false]

--@ query
SELECT vin, ROWTIME, ROWPARTITION, ROWOFFSET FROM cars;
----
["V1", 1000, 0, 0]
["V2", 2000, 0, 1]
["V3", 3000, 1, 0]

--@ query
SELECT * FROM cars WHERE vin = 'V2';
----
["V2", 0.0, 0, null, null, null, false]

-- A persistent projection keeps the key; PARTITION BY re-keys (the new key is the record
-- key, partitioned by it) and keeps the record time.
--@ statement ok
CREATE STREAM cars_by_gear WITH (kafka_topic='cars_by_gear', partitions=1) AS SELECT CAST(gear AS STRING) AS g, vin, speed FROM cars PARTITION BY CAST(gear AS STRING) EMIT CHANGES;

--@ output cars_by_gear timestamps
1000|4|{"VIN":"V1","SPEED":88.5}
2000|0|{"VIN":"V2","SPEED":0.0}
3000|6|{"VIN":"V3","SPEED":130.0}

--@ statement ok
CREATE STREAM cars_fast AS SELECT vin, speed, engine->rpm AS rpm, wheels[1] AS front_left, attrs['color'] AS color FROM cars WHERE speed > 50 EMIT CHANGES;

--@ output CARS_FAST
V1|{"SPEED":88.5,"RPM":3000,"FRONT_LEFT":2.1,"COLOR":"red"}
V3|{"SPEED":130.0,"RPM":5000,"FRONT_LEFT":1.9,"COLOR":"blue"}

--@ statement ok
DESCRIBE cars_fast;
----
/0/sourceDescription/fields/0 = {"name": "VIN", "type": "KEY", "schema": {"type": "STRING", "fields": null, "memberSchema": null}}
/0/sourceDescription/fields/2/name = "RPM"
/0/sourceDescription/fields/2/schema/type = "INTEGER"
/0/sourceDescription/partitions = 2
