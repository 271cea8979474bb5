-- EXTRACTJSONFIELD, GEO_DISTANCE (expected from a separate haversine in Python, R = 6371 km),
-- COALESCE / IFNULL / NULLIF, arrays and maps.
--@ statement ok
CREATE STREAM docs (id STRING KEY, j STRING, a STRING, b STRING, tags ARRAY<STRING>, m MAP<STRING, INT>) WITH (kafka_topic='docs', value_format='JSON', partitions=1);

--@ input docs
d1|{"J":"{\"car\":{\"vin\":\"V1\",\"odo\":[10,20]},\"n.m\":1}","A":null,"B":"b","TAGS":["x","y"],"M":{"k":1,"l":2}}
d2|{"J":"not json","A":"a","B":null,"TAGS":[],"M":{}}

--@ query
SELECT EXTRACTJSONFIELD(j, '$.car.vin'), EXTRACTJSONFIELD(j, '$.car.odo[1]'), EXTRACTJSONFIELD(j, '$.car'), EXTRACTJSONFIELD(j, '$[''n.m'']'), EXTRACTJSONFIELD(j, '$.nope') FROM docs WHERE id = 'd1';
----
["V1", "20", "{\"vin\":\"V1\",\"odo\":[10,20]}", "1", null]

--@ query
SELECT EXTRACTJSONFIELD(j, '$.car.vin') FROM docs WHERE id = 'd2';
----
[null]

-- Palo Alto to London: 8634.66 km, 5365.33 miles.
--@ query
SELECT ROUND(GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122), 2), ROUND(GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, 'KM'), 2), ROUND(GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, 'MILES'), 2), GEO_DISTANCE(1.0, 2.0, 1.0, 2.0) FROM docs WHERE id = 'd1';
----
[8634.66, 8634.66, 5365.33, 0.0]

--@ query ordered
SELECT id, COALESCE(a, b, 'none'), COALESCE(a, b), IFNULL(a, 'alt'), NULLIF(b, 'b'), NULLIF(a, 'b') FROM docs;
----
["d1", "b", "b", "alt", null, null]
["d2", "a", "a", "a", null, "a"]

--@ query ordered
SELECT id, ARRAY_LENGTH(tags), ARRAY_CONTAINS(tags, 'y'), tags[1], ARRAY_LENGTH(ARRAY[1, 2, 3]), ARRAY_CONTAINS(ARRAY[1, 2], 3), m['k'], MAP_KEYS(m), MAP_VALUES(m) FROM docs;
----
["d1", 2, true, "x", 3, false, 1, ["k", "l"], [1, 2]]
["d2", 0, false, null, 3, false, null, [], []]
