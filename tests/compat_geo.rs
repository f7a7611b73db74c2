//! Geo commands: keel vs stock redis-server, byte for byte.
//!
//! Key names with `{a}` `{b}` `{c}` `{d}` hash tags land on shards 3, 0, 1, 2
//! of `--shards 4`.

#[macro_use]
mod common;

use common::Pair;

pair_tests!(
    geoadd_options_errors,
    geopos_geohash_geodist,
    geosearch_radius_box,
    geosearch_options_errors,
    georadius_family,
    store_across_shards,
    resp3_shapes,
    edges_and_odd_scores,
);

/// Cities on every continent, near the date line, the equator, the
/// meridian and the geohash latitude limits.
const CITIES: &str = r#"
    GEOADD KEY 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
    GEOADD KEY 12.496366 41.902782 Rome 9.189982 45.464204 Milan 14.268124 40.851775 Naples
    GEOADD KEY 2.352222 48.856613 Paris -0.127758 51.507351 London 13.404954 52.520008 Berlin
    GEOADD KEY -3.703790 40.416775 Madrid 0 0 NullIsland -0.0001 0.0001 NearNull
    GEOADD KEY -74.005974 40.712776 NewYork -118.243683 34.052235 LosAngeles
    GEOADD KEY 139.691711 35.689487 Tokyo 151.209290 -33.868820 Sydney
    GEOADD KEY -58.381559 -34.603684 BuenosAires 18.424055 -33.924870 CapeTown
    GEOADD KEY 179.9999 -16.5 FijiEast -179.9999 -16.5 FijiWest 180 0 DateLine -180 0 DateLineW
    GEOADD KEY 0 85.05112878 North 0 -85.05112878 South 25.0 84.9 Svalbardish
    GEOADD KEY 37.617298 55.755825 Moscow 77.209023 28.613939 Delhi -43.172896 -22.906847 Rio
    GEOADD KEY 13.361389 38.115556 PalermoTwin
"#;

fn load(p: &mut Pair, key: &str) {
    p.script(&CITIES.replace("KEY", key));
}

fn geoadd_options_errors(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        ZRANGE g 0 -1 WITHSCORES
        ZCARD g
        OBJECT ENCODING g
        GEOADD g 13.361389 38.115556 Palermo
        GEOADD g 13.5 38.1 Palermo
        GEOADD g CH 13.6 38.1 Palermo 1 1 NewOne
        GEOADD g NX 13.7 38.1 Palermo 2 2 NewTwo
        GEOADD g XX 13.8 38.1 Palermo 3 3 NotAdded
        GEOADD g XX CH 13.9 38.1 Palermo 3 3 NotAdded
        GEOADD g NX CH 1 1 NewOne 4 4 NewThree
        GEOADD g CH XX CH 13.361389 38.115556 Palermo
        ZSCORE g Palermo
        ZSCORE g NotAdded
        GEOADD g NX XX 1 1 a
        GEOADD g 1 1
        GEOADD g 1 1 a 2
        GEOADD g GT 1 1 a
        GEOADD g GT 1 1
        GEOADD g INCR 1 1
        GEOADD g CH NX CH
        GEOADD g abc 1 a
        GEOADD g 1 abc a
        GEOADD g 181 0 a
        GEOADD g -180.000001 0 a
        GEOADD g 0 85.06 a
        GEOADD g 0 -86 a
        GEOADD g 1 1 ok 200 10 bad
        GEOADD g 200 10 bad 1 x ok
        GEOADD g inf 0 a
        GEOADD g nan 0 a
        GEOADD g " 1" 0 a
        GEOADD g 0x10 0x10 hex
        GEOADD g 1e1 -1e1 expo
        ZSCORE g hex
        ZSCORE g expo
        SET str x
        GEOADD str 1 1 a
        GEOADD str 200 1 a
        GEOADD newkey XX 1 1 a
        EXISTS newkey
        GEOADD lp 1 1 a 2 2 b
        OBJECT ENCODING lp
        CONFIG SET zset-max-listpack-entries 2
        GEOADD lp 3 3 c
        OBJECT ENCODING lp
        CONFIG SET zset-max-listpack-entries 128
        ZRANGE lp 0 -1 WITHSCORES
        "#,
    );
}

fn geopos_geohash_geodist(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        GEOPOS g Palermo Catania nope Rome NullIsland NearNull
        GEOPOS g FijiEast FijiWest DateLine DateLineW North South Svalbardish
        GEOPOS g Sydney BuenosAires CapeTown Rio Tokyo LosAngeles
        GEOPOS g nope
        GEOPOS nokey a b
        GEOHASH g Palermo Catania nope Rome NullIsland NearNull
        GEOHASH g FijiEast FijiWest DateLine DateLineW North South Svalbardish
        GEOHASH g Sydney BuenosAires CapeTown Rio Tokyo LosAngeles
        GEOHASH nokey a b
        GEOPOS g
        GEOHASH g
        GEODIST g Palermo Catania
        GEODIST g Palermo Catania m
        GEODIST g Palermo Catania km
        GEODIST g Palermo Catania MI
        GEODIST g Palermo Catania ft
        GEODIST g Palermo Catania yd
        GEODIST g Palermo Catania km extra
        GEODIST g Palermo nope
        GEODIST g nope Palermo km
        GEODIST nokey a b
        GEODIST nokey a b foo
        GEODIST g Palermo Palermo
        GEODIST g Palermo PalermoTwin
        GEODIST g NewYork Sydney km
        GEODIST g FijiEast FijiWest
        GEODIST g North South km
        GEODIST g NullIsland NearNull
        GEODIST g DateLine DateLineW
        GEODIST g London Paris mi
        GEODIST g Tokyo BuenosAires ft
        SET str x
        GEOPOS str a
        GEOHASH str a
        GEODIST str a b
        GEODIST str a b foo
        "#,
    );
}

fn geosearch_radius_box(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km DESC
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD WITHDIST WITHHASH
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHHASH WITHDIST ASC
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200000 m WITHDIST
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 124.274 mi WITHDIST
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 656168 ft WITHDIST DESC
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 500 km ASC WITHDIST
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 500 km WITHDIST COUNT 2
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 500 km WITHDIST COUNT 2 DESC
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 5000 km COUNT 3 ANY
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 5000 km COUNT 3 ANY ASC
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 5000 km COUNT 100 ANY DESC WITHDIST
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 0 m
        GEOSEARCH g FROMMEMBER Palermo BYRADIUS 0 m WITHDIST
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 20 m WITHDIST WITHCOORD
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 m
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 20000 km ASC
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 8000 km DESC WITHDIST
        GEOSEARCH g FROMLONLAT 180 0 BYRADIUS 2000 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT -180 -16 BYRADIUS 100 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 0 85 BYRADIUS 1000 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 0 -85 BYRADIUS 1 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 10 45 BYBOX 2000 2000 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 10 45 BYBOX 400 4000 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 10 45 BYBOX 4000 400 km ASC WITHDIST
        GEOSEARCH g FROMMEMBER Rome BYBOX 1000 1000 km ASC WITHCOORD
        GEOSEARCH g FROMMEMBER Sydney BYBOX 50000 20000 km DESC COUNT 4
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 0 0 m WITHDIST
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 100 100 m WITHDIST WITHHASH
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 40000 40000 km ASC
        GEOSEARCH g FROMLONLAT 179 -16.5 BYBOX 500 100 km ASC WITHDIST
        GEOSEARCH g FROMLONLAT 15 37 BYBOX 1 1 mi
        GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 200 km
        GEOSEARCH nokey FROMMEMBER x BYRADIUS 200 km
        GEOSEARCH g fromlonlat 15 37 byradius 200 KM withdist asc count 1
        "#,
    );
}

fn geosearch_options_errors(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        GEOSEARCH g FROMMEMBER nope BYRADIUS 10 km
        GEOSEARCH g FROMLONLAT 200 0 BYRADIUS 10 km
        GEOSEARCH g FROMLONLAT x 0 BYRADIUS 10 km
        GEOSEARCH g FROMLONLAT 0 y BYRADIUS 10 km
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS x km
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS -1 km
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 yards
        GEOSEARCH g FROMLONLAT 0 0 BYBOX x 1 km
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 1 y km
        GEOSEARCH g FROMLONLAT 0 0 BYBOX -1 1 km
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 1 -1 km
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 1 1 yards
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 1 1
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1
        GEOSEARCH g FROMLONLAT 0 0 COUNT 1 BYRADIUS
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km BYBOX 1 1 km
        GEOSEARCH g FROMLONLAT 0 0 BYBOX 1 1 km BYRADIUS 1 km
        GEOSEARCH g FROMLONLAT 0 0 FROMMEMBER Rome BYRADIUS 1 km
        GEOSEARCH g FROMMEMBER Rome FROMLONLAT 0 0 BYRADIUS 1 km
        GEOSEARCH g FROMMEMBER Rome FROMMEMBER Paris BYRADIUS 100 km
        GEOSEARCH g BYRADIUS 1 km WITHDIST
        geosearch g BYRADIUS 1 km WITHDIST
        GeoSearch g FROMLONLAT 0 0 WITHDIST ASC DESC
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km COUNT 0
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km COUNT -1
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km COUNT x
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km COUNT
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km ANY
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km STORE x
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km STOREDIST
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km foo
        GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1 km COUNT 5 ANY ANY
        GEOSEARCH nokey FROMLONLAT 0 0 BYRADIUS 1 km ANY
        GEOSEARCH nokey FROMMEMBER x BYRADIUS -1 km
        GEOSEARCH nokey FROMLONLAT 0 0
        GEOSEARCHSTORE dst g FROMLONLAT 0 0 BYRADIUS 1 km WITHDIST
        GEOSEARCHSTORE dst g FROMLONLAT 0 0 BYRADIUS 1 km WITHCOORD
        GEOSEARCHSTORE dst g FROMLONLAT 0 0 BYRADIUS 1 km WITHHASH
        GEOSEARCHSTORE dst g FROMLONLAT 0 0 BYRADIUS 1 km STORE x
        GEOSEARCHSTORE dst g FROMLONLAT 0 0
        geosearchstore dst g BYBOX 1 1 km
        SET str x
        GEOSEARCH str FROMLONLAT 0 0 BYRADIUS 1 km
        GEOSEARCH str FROMLONLAT 500 0 BYRADIUS 1 km
        GEOSEARCHSTORE dst str FROMLONLAT 0 0 BYRADIUS 1 km
        GEOSEARCHSTORE str g FROMLONLAT 0 0 BYRADIUS 1 km
        TYPE str
        "#,
    );
}

fn georadius_family(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        GEORADIUS g 15 37 200 km
        GEORADIUS g 15 37 200 km ASC
        GEORADIUS g 15 37 200 km DESC WITHDIST WITHCOORD WITHHASH
        GEORADIUS g 15 37 200 km COUNT 1
        GEORADIUS g 15 37 2000 km COUNT 3 ANY
        GEORADIUS g 15 37 200 km WITHDIST COUNT 1 DESC
        GEORADIUS g 15 37 200 m
        GEORADIUS g 15 37 -1 km
        GEORADIUS g 15 37 x km
        GEORADIUS g 15 37 1 yd
        GEORADIUS g 200 37 1 km
        GEORADIUS g 15 37 200 km foo
        GEORADIUS g 15 37 200 km ANY
        GEORADIUS g 15 37 200 km COUNT 0
        GEORADIUS g 15 37 200 km STORE
        GEORADIUS g 15 37 200 km FROMLONLAT 1 1
        GEORADIUS g 15 37 200 km STORE dst WITHDIST
        GEORADIUS nokey 15 37 200 km
        GEORADIUS nokey 200 37 200 km
        GEORADIUSBYMEMBER g Palermo 200 km
        GEORADIUSBYMEMBER g Palermo 200 km WITHDIST WITHCOORD ASC
        GEORADIUSBYMEMBER g Palermo 2000 km COUNT 4 DESC WITHHASH
        GEORADIUSBYMEMBER g Palermo 0 km
        GEORADIUSBYMEMBER g nope 200 km
        GEORADIUSBYMEMBER g nope -1 km
        GEORADIUSBYMEMBER g Palermo -1 km
        GEORADIUSBYMEMBER g Palermo 1 yd
        GEORADIUSBYMEMBER g Palermo 200 km BYBOX
        GEORADIUSBYMEMBER nokey Palermo -1 km
        GEORADIUSBYMEMBER nokey Palermo 1 km foo
        GEORADIUSBYMEMBER nokey Palermo 1 km STORE dst
        GEORADIUS_RO g 15 37 200 km WITHDIST ASC
        GEORADIUS_RO g 15 37 200 km STORE dst
        GEORADIUS_RO g 15 37 200 km STOREDIST dst
        GEORADIUSBYMEMBER_RO g Rome 500 km WITHDIST ASC COUNT 3
        GEORADIUSBYMEMBER_RO g Rome 500 km STORE dst
        GEORADIUSBYMEMBER_RO nokey Rome 500 km
        GEORADIUS g 15 37 200 km STORE dst
        ZRANGE dst 0 -1 WITHSCORES
        GEORADIUS g 15 37 200 km STOREDIST dst
        ZRANGE dst 0 -1 WITHSCORES
        GEORADIUS g 15 37 2000 km STOREDIST dst COUNT 2 DESC
        ZRANGE dst 0 -1 WITHSCORES
        GEORADIUS g 15 37 200 km STORE dst STOREDIST dst2
        EXISTS dst dst2
        ZRANGE dst2 0 -1 WITHSCORES
        GEORADIUSBYMEMBER g Rome 300 mi STORE dst
        ZRANGE dst 0 -1 WITHSCORES
        GEORADIUS g 15 37 1 m STORE dst
        EXISTS dst
        GEORADIUS nokey 15 37 1 m STORE dst2
        EXISTS dst2
        GEORADIUS g 15 37 1 m STORE dst2
        SET str x
        GEORADIUS str 15 37 1 m
        GEORADIUSBYMEMBER str a 1 m
        GEORADIUS g 15 37 200 km STORE str
        TYPE str
        "#,
    );
}

fn store_across_shards(p: &mut Pair) {
    load(p, "{a}g");
    p.script(
        r#"
        GEOSEARCHSTORE {b}dst {a}g FROMLONLAT 15 37 BYRADIUS 200 km
        ZRANGE {b}dst 0 -1 WITHSCORES
        GEOSEARCHSTORE {b}dst {a}g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
        ZRANGE {b}dst 0 -1 WITHSCORES
        GEOSEARCHSTORE {c}dst {a}g FROMMEMBER Paris BYBOX 3000 3000 km DESC COUNT 3 STOREDIST
        ZRANGE {c}dst 0 -1 WITHSCORES
        GEOSEARCHSTORE {c}dst {a}g FROMMEMBER Paris BYBOX 3000 3000 km COUNT 3 ANY
        ZCARD {c}dst
        OBJECT ENCODING {c}dst
        GEOSEARCHSTORE {d}dst {a}g FROMLONLAT 0 0 BYRADIUS 20000 km
        ZCARD {d}dst
        GEOSEARCHSTORE {d}dst {a}g FROMLONLAT 0 0 BYRADIUS 1 m STOREDIST
        ZRANGE {d}dst 0 -1 WITHSCORES
        GEOSEARCHSTORE {d}dst {a}g FROMLONLAT 50 50 BYRADIUS 1 m
        EXISTS {d}dst
        SET {d}dst x
        EXPIRE {d}dst 100
        GEOSEARCHSTORE {d}dst {a}g FROMLONLAT 15 37 BYRADIUS 200 km
        TYPE {d}dst
        TTL {d}dst
        SET {d}dst x
        GEOSEARCHSTORE {d}dst {b}nokey FROMLONLAT 15 37 BYRADIUS 200 km
        EXISTS {d}dst
        GEOSEARCHSTORE {d}dst {b}nokey FROMMEMBER x BYRADIUS 200 km
        GEOSEARCHSTORE {a}g {a}g FROMLONLAT 15 37 BYRADIUS 200 km
        ZRANGE {a}g 0 -1 WITHSCORES
        GEOADD {c}h 1 1 a 1.001 1.001 b 1.002 1.002 c
        GEORADIUS {c}h 1 1 1000 km STORE {d}out
        ZRANGE {d}out 0 -1 WITHSCORES
        GEORADIUSBYMEMBER {c}h a 1000 km STOREDIST {b}out
        ZRANGE {b}out 0 -1 WITHSCORES
        GEORADIUS {c}h 1 1 1000 km STORE {a}x STOREDIST {b}out2 DESC
        EXISTS {a}x
        ZRANGE {b}out2 0 -1 WITHSCORES
        COMMAND GETKEYS GEORADIUS {c}h 1 1 1000 km STORE {a}x STOREDIST {b}out2
        COMMAND GETKEYS GEOSEARCHSTORE {a}x {c}h FROMLONLAT 1 1 BYRADIUS 1 km
        COMMAND GETKEYS GEORADIUS {c}h 1 1 1000 km
        COMMAND GETKEYS GEORADIUS {c}h 1 1 1000 km STOREDIST {b}out2 STORE {a}x
        COMMAND GETKEYS GEORADIUSBYMEMBER {c}h a 1000 km store {a}x
        COMMAND GETKEYS GEORADIUS_RO {c}h 1 1 1000 km
        COMMAND GETKEYS GEOADD {c}h 1 1 a
        COMMAND INFO geoadd geopos geodist geohash georadius_ro georadiusbymember_ro geosearch
        GEORADIUSBYMEMBER {c}h a 1000 km STORE {a}x
        ZRANGE {a}x 0 -1 WITHSCORES
        "#,
    );
}

fn resp3_shapes(p: &mut Pair) {
    load(p, "g");
    p.script(
        r#"
        !resp3
        GEOPOS g Palermo nope NullIsland DateLine South
        GEOHASH g Palermo nope
        GEODIST g Palermo Catania
        GEODIST g Palermo nope
        GEODIST nokey a b
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD WITHDIST WITHHASH ASC
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km
        GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 1 m
        GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 1 m
        GEORADIUS g 15 37 200 km WITHCOORD
        GEORADIUSBYMEMBER g Rome 300 km WITHDIST DESC
        GEOSEARCHSTORE dst g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
        ZRANGE dst 0 -1 WITHSCORES
        !resp2
        "#,
    );
}

fn edges_and_odd_scores(p: &mut Pair) {
    p.script(
        r#"
        ZADD odd -1 neg 0 zero 1.5 frac 4503599627370496 big 1e300 huge inf pinf -inf ninf 9007199254740993 over
        GEOPOS odd neg zero frac big huge pinf ninf over
        GEOHASH odd neg zero frac big huge pinf ninf over
        GEODIST odd zero frac
        GEODIST odd neg ninf km
        GEOSEARCH odd FROMLONLAT -180 -85 BYRADIUS 100 km WITHHASH WITHCOORD
        GEOSEARCH odd FROMMEMBER big BYRADIUS 10 km WITHHASH WITHDIST
        GEOSEARCH odd FROMMEMBER huge BYRADIUS 10 km WITHHASH WITHDIST
        GEOADD dup 10 10 a 10 10 b 10 10 c 10 10 d 20 20 e
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 10 km ASC
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 10 km DESC
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 5000 km DESC WITHDIST
        GEOSEARCH dup FROMLONLAT 20 20 BYRADIUS 5000 km ASC WITHDIST
        GEOSEARCH dup FROMLONLAT 0 0 BYRADIUS 0.5 m
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 10 km ASC COUNT 2
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 10 km DESC COUNT 3
        GEOSEARCH dup FROMLONLAT 10 10 BYRADIUS 5000 km DESC COUNT 2
        GEOADD tiny 0.00001 0.00001 a 0.00002 0.00002 b -0.00001 -0.00001 c
        GEOPOS tiny a b c
        GEOSEARCH tiny FROMLONLAT 0 0 BYRADIUS 5 m WITHDIST WITHCOORD ASC
        GEOSEARCH tiny FROMLONLAT 0 0 BYBOX 3 3 m WITHDIST ASC
        GEOADD poles -180 85.05112878 a 180 85.05112878 b -180 -85.05112878 c 180 -85.05112878 d
        ZRANGE poles 0 -1 WITHSCORES
        GEOPOS poles a b c d
        GEOHASH poles a b c d
        GEOSEARCH poles FROMLONLAT 0 85 BYRADIUS 600 km WITHDIST ASC
        GEOSEARCH poles FROMLONLAT 179 -85 BYBOX 1000 1000 km WITHDIST ASC
        GEODIST poles a b
        GEODIST poles a c km
        "#,
    );
}
