//! Geo commands (Redis 7.0): points live in sorted sets, the score being the
//! 52-bit interleaved geohash, so data is interchangeable with stock Redis.

use bytes::Bytes;

use crate::storage::notify as ev;

use super::table::{Command, cmd, flags::*};
use super::zsets::{limits, read};
use super::{Ctx, eq_ic, errors, parse_f64, parse_i64};
use crate::protocol::Out;
use crate::storage::Value;
use crate::storage::zset::{ScoreRange, ZSet};

pub fn commands() -> Vec<Command> {
    vec![
        cmd("geoadd", -5, WRITE | DENYOOM, geoadd).keys(1, 1, 1),
        cmd("geopos", -2, READONLY, geopos).keys(1, 1, 1),
        cmd("geodist", -4, READONLY, geodist).keys(1, 1, 1),
        cmd("geohash", -2, READONLY, geohash).keys(1, 1, 1),
        cmd("georadius", -6, WRITE | DENYOOM, georadius).keys(1, 1, 1),
        cmd("georadiusbymember", -5, WRITE | DENYOOM, georadiusbymember).keys(1, 1, 1),
        cmd("georadius_ro", -6, READONLY, georadius_ro).keys(1, 1, 1),
        cmd("georadiusbymember_ro", -5, READONLY, georadiusbymember_ro).keys(1, 1, 1),
        cmd("geosearch", -7, READONLY, geosearch).keys(1, 1, 1),
        cmd("geosearchstore", -8, WRITE | DENYOOM, geosearchstore).keys(1, 2, 1),
    ]
}

// ---------------------------------------------------------------------------
// Geohash arithmetic (the facts of Redis's geohash.c / geohash_helper.c).

const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const STEP_MAX: u8 = 26;
const EARTH_RADIUS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A geohash of `step` bits per coordinate; step 0 marks a dropped box.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Hash {
    bits: u64,
    step: u8,
}

const ZERO: Hash = Hash { bits: 0, step: 0 };

#[derive(Clone, Copy, Debug)]
struct Area {
    lon: (f64, f64),
    lat: (f64, f64),
}

/// Spreads the bits of `v` to the even positions.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `v` into 32 bits.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude in the even bits, longitude in the odd ones.
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

fn encode(lon_r: (f64, f64), lat_r: (f64, f64), lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.0 || lat > lat_r.1 || lon < lon_r.0 || lon > lon_r.1 {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.0) / (lat_r.1 - lat_r.0) * scale;
    let lon_off = (lon - lon_r.0) / (lon_r.1 - lon_r.0) * scale;
    Some(Hash {
        bits: interleave(lat_off as u32, lon_off as u32),
        step,
    })
}

fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

fn decode(h: Hash) -> Option<Area> {
    if h == ZERO {
        return None;
    }
    let lat_i = squash(h.bits) as f64;
    let lon_i = squash(h.bits >> 1) as f64;
    let div = (1u64 << h.step) as f64;
    let (lat_s, lon_s) = (LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN);
    Some(Area {
        lat: (
            LAT_MIN + (lat_i / div) * lat_s,
            LAT_MIN + ((lat_i + 1.0) / div) * lat_s,
        ),
        lon: (
            LONG_MIN + (lon_i / div) * lon_s,
            LONG_MIN + ((lon_i + 1.0) / div) * lon_s,
        ),
    })
}

/// C's `(uint64_t)d` as x86-64 compilers emit it (out of range values wrap
/// the way cvttsd2si does), so odd scores decode as in Redis.
fn c_u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d < TWO63 {
        c_i64(d) as u64
    } else {
        (c_i64(d - TWO63) as u64) ^ (1 << 63)
    }
}

/// C's `(long long)d` on x86-64: out of range and NaN give LLONG_MIN.
fn c_i64(d: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// A zset score to (longitude, latitude): the centre of its step-26 box.
fn decode_score(score: f64) -> [f64; 2] {
    let a = decode(Hash {
        bits: c_u64(score),
        step: STEP_MAX,
    })
    .expect("step 26 is never the zero hash");
    let lon = ((a.lon.0 + a.lon.1) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat.0 + a.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

fn align52(h: Hash) -> u64 {
    h.bits << (52 - h.step as u32 * 2)
}

/// The score GEOADD stores for a validated position.
fn score_of(lon: f64, lat: f64) -> f64 {
    align52(encode_wgs84(lon, lat, STEP_MAX).expect("validated coordinates")) as f64
}

fn move_x(h: &mut Hash, d: i8) {
    let shift = 64 - h.step as u32 * 2;
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    let x = if d > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    h.bits = (x & (0xaaaa_aaaa_aaaa_aaaau64 >> shift)) | y;
}

fn move_y(h: &mut Hash, d: i8) {
    let shift = 64 - h.step as u32 * 2;
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    let y = if d > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    h.bits = x | (y & (0x5555_5555_5555_5555u64 >> shift));
}

fn moved(h: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = h;
    if dx != 0 {
        move_x(&mut n, dx);
    }
    if dy != 0 {
        move_y(&mut n, dy);
    }
    n
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

#[derive(Clone, Copy)]
enum Kind {
    Radius(f64),
    Box { w: f64, h: f64 },
}

/// The search area: centre, size in the request's unit, unit in meters.
#[derive(Clone, Copy)]
struct Shape {
    xy: [f64; 2],
    conv: f64,
    kind: Kind,
}

fn steps_for_radius(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// [min lon, min lat, max lon, max lat] around the centre.
fn bounding_box(s: &Shape) -> [f64; 4] {
    let [lon, lat] = s.xy;
    let (hh, hw) = match s.kind {
        Kind::Radius(r) => (s.conv * r, s.conv * r),
        Kind::Box { w, h } => (s.conv * (h / 2.0), s.conv * (w / 2.0)),
    };
    let lat_d = rad_deg(hh / EARTH_RADIUS);
    let lon_top = rad_deg(hw / EARTH_RADIUS / deg_rad(lat + lat_d).cos());
    let lon_bottom = rad_deg(hw / EARTH_RADIUS / deg_rad(lat - lat_d).cos());
    let d = if lat < 0.0 { lon_bottom } else { lon_top };
    [lon - d, lat - lat_d, lon + d, lat + lat_d]
}

/// The centre box and its 8 neighbours (dropped ones are ZERO), in Redis's
/// order: self, N, S, E, W, NE, NW, SE, SW.
fn search_boxes(s: &Shape) -> [Hash; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let radius = match s.kind {
        Kind::Radius(r) => r,
        Kind::Box { w, h } => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
    } * s.conv;
    let [lon, lat] = s.xy;
    let mut steps = steps_for_radius(radius, lat);
    let boxes = |steps: u8| {
        let h = encode_wgs84(lon, lat, steps).expect("validated centre");
        [
            h,
            moved(h, 0, 1),
            moved(h, 0, -1),
            moved(h, 1, 0),
            moved(h, -1, 0),
            moved(h, 1, 1),
            moved(h, -1, 1),
            moved(h, 1, -1),
            moved(h, -1, -1),
        ]
    };
    let mut b = boxes(steps);
    let area = |h: Hash| decode(h).expect("non-zero hash");
    let decrease = area(b[1]).lat.1 < max_lat
        || area(b[2]).lat.0 > min_lat
        || area(b[3]).lon.1 < max_lon
        || area(b[4]).lon.0 > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        b = boxes(steps);
    }
    if steps >= 2 {
        let a = area(b[0]);
        let mut drop = |idx: &[usize]| idx.iter().for_each(|&i| b[i] = ZERO);
        if a.lat.0 < min_lat {
            drop(&[2, 8, 7]);
        }
        if a.lat.1 > max_lat {
            drop(&[1, 5, 6]);
        }
        if a.lon.0 < min_lon {
            drop(&[4, 8, 6]);
        }
        if a.lon.1 > max_lon {
            drop(&[3, 7, 5]);
        }
    }
    b
}

/// The point's position and distance (meters) if it lies in the shape.
fn within(s: &Shape, score: f64) -> Option<([f64; 2], f64)> {
    let xy = decode_score(score);
    let [cx, cy] = s.xy;
    match s.kind {
        Kind::Radius(r) => {
            let d = distance(cx, cy, xy[0], xy[1]);
            (d <= r * s.conv).then_some((xy, d))
        }
        Kind::Box { w, h } => {
            if lat_distance(xy[1], cy) > h * s.conv / 2.0 {
                return None;
            }
            if distance(xy[0], xy[1], cx, xy[1]) > w * s.conv / 2.0 {
                return None;
            }
            Some((xy, distance(cx, cy, xy[0], xy[1])))
        }
    }
}

struct Point {
    member: Vec<u8>,
    xy: [f64; 2],
    dist: f64,
    score: f64,
}

/// Every member inside the shape, box by box in Redis's order; with a
/// `limit` (COUNT ANY) the scan stops once that many were found.
fn search(z: &ZSet, s: &Shape, limit: usize) -> Vec<Point> {
    let boxes = search_boxes(s);
    let mut out = Vec::new();
    let mut last: usize = 0;
    for (i, &h) in boxes.iter().enumerate() {
        if h == ZERO {
            continue;
        }
        // Huge radii make neighbours coincide: skip a repeat of the last box.
        if last != 0 && h == boxes[last] {
            continue;
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let min = align52(h) as f64;
        let max = align52(Hash {
            bits: h.bits + 1,
            step: h.step,
        }) as f64;
        let range = ScoreRange {
            min,
            max,
            minex: false,
            maxex: true,
        };
        if let Some(first) = z.first_in_range(&range) {
            for (m, score) in z.iter_from(first, false) {
                if score >= max {
                    break;
                }
                if let Some((xy, dist)) = within(s, score) {
                    out.push(Point {
                        member: m.to_vec(),
                        xy,
                        dist,
                        score,
                    });
                }
                if limit != 0 && out.len() >= limit {
                    break;
                }
            }
        }
        last = i;
    }
    out
}

/// GEOHASH's standard string: re-encoded over [-180,180] x [-90,90].
fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = decode_score(score);
    let bits = encode((-180.0, 180.0), (-90.0, 90.0), lon, lat, 26).map_or(0, |h| h.bits);
    let mut s = [b'0'; 11];
    for (i, c) in s.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    s
}

// ---------------------------------------------------------------------------
// Reply formatting.

/// Distances: fixed point with 4 decimals (fixedpoint_d2string, llrint).
fn fmt_distance(d: f64) -> String {
    let v = (d * 10000.0).round_ties_even();
    let v = if v.is_nan() || !(-9.2e18..9.2e18).contains(&v) {
        i64::MIN
    } else {
        v as i64
    };
    let u = v.unsigned_abs();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", u / 10000, u % 10000)
}

/// Coordinates: "%.17Lf" with trailing zeros trimmed (LD_STR_HUMAN).
fn fmt_coord(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// addReplyHumanLongDouble: a bulk string in RESP2, a double in RESP3.
fn reply_coord(o: &mut Out, d: f64) {
    let s = fmt_coord(d);
    if o.resp3 {
        o.raw(format!(",{s}\r\n").as_bytes());
    } else {
        o.bulk(s.as_bytes());
    }
}

fn reply_pos(o: &mut Out, xy: [f64; 2]) {
    o.array(2);
    reply_coord(o, xy[0]);
    reply_coord(o, xy[1]);
}

// ---------------------------------------------------------------------------
// Plumbing, as in zsets.rs: handlers write into a detached reply buffer.

fn with_out(ctx: &mut Ctx, a: &[Bytes], f: fn(&mut Ctx, &mut Out, &[Bytes])) {
    super::with_out(ctx, |ctx, o| f(ctx, o, a))
}

fn geoadd(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, geoadd_impl)
}
fn geopos(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, geopos_impl)
}
fn geodist(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, geodist_impl)
}
fn geohash(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, geohash_impl)
}
fn georadius(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| search_generic(c, o, a, 1, RADIUS_COORDS))
}
fn georadiusbymember(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| search_generic(c, o, a, 1, RADIUS_MEMBER))
}
fn georadius_ro(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| {
        search_generic(c, o, a, 1, RADIUS_COORDS | NOSTORE)
    })
}
fn georadiusbymember_ro(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| {
        search_generic(c, o, a, 1, RADIUS_MEMBER | NOSTORE)
    })
}
fn geosearch(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| search_generic(c, o, a, 1, SEARCH))
}
fn geosearchstore(ctx: &mut Ctx, a: &[Bytes]) {
    with_out(ctx, a, |c, o, a| {
        search_generic(c, o, a, 2, SEARCH | SEARCHSTORE)
    })
}

/// Two arguments as a valid (longitude, latitude), or the error reply.
fn parse_lonlat(lon: &[u8], lat: &[u8], o: &mut Out) -> Option<[f64; 2]> {
    let (Some(x), Some(y)) = (parse_f64(lon), parse_f64(lat)) else {
        o.err(errors::NOT_FLOAT);
        return None;
    };
    if !(LONG_MIN..=LONG_MAX).contains(&x) || !(LAT_MIN..=LAT_MAX).contains(&y) {
        o.err(&format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        ));
        return None;
    }
    Some([x, y])
}

/// Meters per unit, or the error reply.
fn parse_unit(u: &[u8], o: &mut Out) -> Option<f64> {
    let conv = if eq_ic(u, "m") {
        1.0
    } else if eq_ic(u, "km") {
        1000.0
    } else if eq_ic(u, "ft") {
        0.3048
    } else if eq_ic(u, "mi") {
        1609.34
    } else {
        o.err("ERR unsupported unit provided. please use M, KM, FT, MI");
        return None;
    };
    Some(conv)
}

/// `<radius> <unit>`: (radius, meters per unit).
fn parse_distance(a: &[Bytes], o: &mut Out) -> Option<(f64, f64)> {
    let Some(r) = parse_f64(&a[0]) else {
        o.err("ERR need numeric radius");
        return None;
    };
    if r < 0.0 {
        o.err("ERR radius cannot be negative");
        return None;
    }
    Some((r, parse_unit(&a[1], o)?))
}

/// `<width> <height> <unit>`: (width, height, meters per unit).
fn parse_box(a: &[Bytes], o: &mut Out) -> Option<(f64, f64, f64)> {
    let Some(w) = parse_f64(&a[0]) else {
        o.err("ERR need numeric width");
        return None;
    };
    let Some(h) = parse_f64(&a[1]) else {
        o.err("ERR need numeric height");
        return None;
    };
    if h < 0.0 || w < 0.0 {
        o.err("ERR height or width cannot be negative");
        return None;
    }
    Some((w, h, parse_unit(&a[2], o)?))
}

// ---------------------------------------------------------------------------
// GEOADD GEOPOS GEODIST GEOHASH

fn geoadd_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let key = &a[1];
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 2;
    while i < a.len() {
        if eq_ic(&a[i], "nx") {
            nx = true;
        } else if eq_ic(&a[i], "xx") {
            xx = true;
        } else if eq_ic(&a[i], "ch") {
            ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let n = a.len() - i;
    // No triples at all is ZADD's syntax error in Redis (it forwards there).
    if !n.is_multiple_of(3) || (nx && xx) || n == 0 {
        return o.err(errors::SYNTAX);
    }
    let mut items = Vec::with_capacity(n / 3);
    for t in a[i..].chunks(3) {
        let Some([x, y]) = parse_lonlat(&t[0], &t[1], o) else {
            return;
        };
        items.push((score_of(x, y), &t[2]));
    }
    let lim = limits(ctx);
    let (mut added, mut updated) = (0u64, 0u64);
    let mut apply = |z: &mut ZSet| {
        for &(s, m) in &items {
            match z.score(m) {
                Some(cur) if !nx && s != cur => {
                    z.update(m, cur, s);
                    updated += 1;
                }
                Some(_) => {}
                None if !xx => {
                    z.insert_new(m, s, lim);
                    added += 1;
                }
                None => {}
            }
        }
    };
    match ctx.lookup_write(key) {
        Some(e) => match &mut e.value {
            Value::ZSet(z) => apply(z),
            _ => return o.err(errors::WRONGTYPE),
        },
        None if xx => {}
        None => {
            let mut z = ZSet::new();
            apply(&mut z);
            if !z.is_empty() {
                ctx.db(key).set(key, Value::ZSet(z));
            }
        }
    }
    if added + updated > 0 {
        ctx.dirty(key, added + updated);
        ctx.notify(ev::ZSET, "zadd", key);
        ctx.signal_ready(key);
    }
    o.int((if ch { added + updated } else { added }) as i64);
}

fn geopos_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let z = match read(ctx, &a[1]) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(z) => z,
    };
    o.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => reply_pos(o, decode_score(s)),
            None => o.null_array(),
        }
    }
}

fn geohash_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let z = match read(ctx, &a[1]) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(z) => z,
    };
    o.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => o.bulk(&geohash_string(s)),
            None => o.null(),
        }
    }
}

fn geodist_impl(ctx: &mut Ctx, o: &mut Out, a: &[Bytes]) {
    let conv = match a.len() {
        4 => 1.0,
        5 => match parse_unit(&a[4], o) {
            Some(c) => c,
            None => return,
        },
        _ => return o.err(errors::SYNTAX),
    };
    let z = match read(ctx, &a[1]) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(None) => return o.null(),
        Ok(Some(z)) => z,
    };
    let (Some(s1), Some(s2)) = (z.score(&a[2]), z.score(&a[3])) else {
        return o.null();
    };
    let ([x1, y1], [x2, y2]) = (decode_score(s1), decode_score(s2));
    o.bulk(fmt_distance(distance(x1, y1, x2, y2) / conv).as_bytes());
}

// ---------------------------------------------------------------------------
// GEORADIUS* / GEOSEARCH*

const RADIUS_COORDS: u8 = 1;
const RADIUS_MEMBER: u8 = 2;
const NOSTORE: u8 = 4;
const SEARCH: u8 = 8;
const SEARCHSTORE: u8 = 16;

#[derive(PartialEq, Clone, Copy)]
enum Sort {
    None,
    Asc,
    Desc,
}

const ERR_DECODE: &str = "ERR could not decode requested zset member";

fn search_generic(ctx: &mut Ctx, o: &mut Out, a: &[Bytes], src: usize, fl: u8) {
    let zobj = match read(ctx, &a[src]) {
        Err(()) => return o.err(errors::WRONGTYPE),
        Ok(z) => z,
    };
    let mut shape = Shape {
        xy: [0.0, 0.0],
        conv: 0.0,
        kind: Kind::Radius(0.0),
    };
    let mut storekey: Option<usize> = None;
    let mut storedist = false;
    let base;
    if fl & RADIUS_COORDS != 0 {
        base = 6;
        let Some(xy) = parse_lonlat(&a[2], &a[3], o) else {
            return;
        };
        shape.xy = xy;
        let Some((r, conv)) = parse_distance(&a[4..6], o) else {
            return;
        };
        (shape.kind, shape.conv) = (Kind::Radius(r), conv);
    } else if fl & RADIUS_MEMBER != 0 {
        base = 5;
        // Without the key, Redis still parses the options (for the reply
        // type) but not the member nor the radius.
        if let Some(z) = zobj {
            let Some(s) = z.score(&a[2]) else {
                return o.err(ERR_DECODE);
            };
            shape.xy = decode_score(s);
            let Some((r, conv)) = parse_distance(&a[3..5], o) else {
                return;
            };
            (shape.kind, shape.conv) = (Kind::Radius(r), conv);
        }
    } else if fl & SEARCHSTORE != 0 {
        base = 3;
        storekey = Some(1);
    } else {
        base = 2;
    }

    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let is_search = fl & SEARCH != 0;
    let nostore = fl & NOSTORE != 0;
    let rem = a.len().saturating_sub(base);
    let mut i = 0;
    while i < rem {
        let arg = &a[base + i];
        let next = |k: usize| &a[base + i + k];
        if eq_ic(arg, "withdist") {
            withdist = true;
        } else if eq_ic(arg, "withhash") {
            withhash = true;
        } else if eq_ic(arg, "withcoord") {
            withcoord = true;
        } else if eq_ic(arg, "any") {
            any = true;
        } else if eq_ic(arg, "asc") {
            sort = Sort::Asc;
        } else if eq_ic(arg, "desc") {
            sort = Sort::Desc;
        } else if eq_ic(arg, "count") && i + 1 < rem {
            let Some(c) = parse_i64(next(1)) else {
                return o.err(errors::NOT_INT);
            };
            if c <= 0 {
                return o.err("ERR COUNT must be > 0");
            }
            count = c;
            i += 1;
        } else if (eq_ic(arg, "store") || eq_ic(arg, "storedist"))
            && i + 1 < rem
            && !nostore
            && !is_search
        {
            storekey = Some(base + i + 1);
            storedist = eq_ic(arg, "storedist");
            i += 1;
        } else if eq_ic(arg, "storedist") && is_search && fl & SEARCHSTORE != 0 {
            storedist = true;
        } else if eq_ic(arg, "frommember") && i + 1 < rem && is_search && !fromloc {
            if let Some(z) = zobj {
                let Some(s) = z.score(next(1)) else {
                    return o.err(ERR_DECODE);
                };
                shape.xy = decode_score(s);
            }
            frommember = true;
            i += 1;
        } else if eq_ic(arg, "fromlonlat") && i + 2 < rem && is_search && !frommember {
            let Some(xy) = parse_lonlat(next(1), next(2), o) else {
                return;
            };
            shape.xy = xy;
            fromloc = true;
            i += 2;
        } else if eq_ic(arg, "byradius") && i + 2 < rem && is_search && !bybox {
            let Some((r, conv)) = parse_distance(&a[base + i + 1..base + i + 3], o) else {
                return;
            };
            (shape.kind, shape.conv) = (Kind::Radius(r), conv);
            byradius = true;
            i += 2;
        } else if eq_ic(arg, "bybox") && i + 3 < rem && is_search && !byradius {
            let Some((w, h, conv)) = parse_box(&a[base + i + 1..base + i + 4], o) else {
                return;
            };
            (shape.kind, shape.conv) = (Kind::Box { w, h }, conv);
            bybox = true;
            i += 3;
        } else {
            return o.err(errors::SYNTAX);
        }
        i += 1;
    }

    if storekey.is_some() && (withdist || withhash || withcoord) {
        return o.err(if fl & SEARCHSTORE != 0 {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        });
    }
    // Redis names the command as the client spelled it.
    let name = String::from_utf8_lossy(&a[0]);
    if is_search && !(frommember || fromloc) {
        return o.err(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ));
    }
    if is_search && !(byradius || bybox) {
        return o.err(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ));
    }
    if any && count == 0 {
        return o.err("ERR the ANY argument requires COUNT argument");
    }

    let Some(z) = zobj else {
        match storekey {
            Some(k) => {
                let dst = &a[k];
                let now = ctx.now;
                let db = ctx.db(dst);
                let existed = db.get_mut(dst, now).is_some();
                if existed {
                    db.remove(dst);
                    ctx.dirty(dst, 1);
                    ctx.notify(ev::GENERIC, "del", dst);
                }
                o.int(0);
            }
            None => o.array(0),
        }
        return;
    };

    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let mut pts = search(z, &shape, if any { count as usize } else { 0 });
    if pts.is_empty() && storekey.is_none() {
        return o.array(0);
    }
    // Stable like glibc's merge-sort qsort.
    match sort {
        Sort::Asc => pts.sort_by(|x, y| x.dist.total_cmp(&y.dist)),
        Sort::Desc => pts.sort_by(|x, y| y.dist.total_cmp(&x.dist)),
        Sort::None => {}
    }
    let n = if count == 0 {
        pts.len()
    } else {
        pts.len().min(count as usize)
    };
    pts.truncate(n);

    let Some(k) = storekey else {
        let opts = withdist as usize + withhash as usize + withcoord as usize;
        o.array(n);
        for p in &pts {
            if opts > 0 {
                o.array(opts + 1);
            }
            o.bulk(&p.member);
            if withdist {
                o.bulk(fmt_distance(p.dist / shape.conv).as_bytes());
            }
            if withhash {
                o.int(c_i64(p.score));
            }
            if withcoord {
                reply_pos(o, p.xy);
            }
        }
        return;
    };

    let dst = &a[k];
    let conv = shape.conv;
    let mut items: Vec<(Vec<u8>, f64)> = pts
        .into_iter()
        .map(|p| {
            let s = if storedist { p.dist / conv } else { p.score };
            (p.member, s)
        })
        .collect();
    if items.is_empty() {
        let now = ctx.now;
        let db = ctx.db(dst);
        if db.get_mut(dst, now).is_some() {
            db.remove(dst);
            ctx.dirty(dst, 1);
            ctx.notify(ev::GENERIC, "del", dst);
        }
        return o.int(0);
    }
    items.sort_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
    let lim = limits(ctx);
    let listpack = items.len() <= lim.entries && items.iter().all(|(m, _)| m.len() <= lim.value);
    let z = ZSet::from_sorted(items, listpack);
    let _ = ctx.lookup_write(dst);
    ctx.db(dst).set(dst, Value::ZSet(z));
    let event = if is_search {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    ctx.notify(ev::ZSET, event, dst);
    ctx.signal_ready(dst);
    ctx.dirty(dst, n as u64);
    o.int(n as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip() {
        // Palermo as in Redis's docs: score 3479099956230698.
        assert_eq!(score_of(13.361389, 38.115556), 3479099956230698.0);
        let [x, y] = decode_score(3479099956230698.0);
        assert_eq!(fmt_coord(x), "13.36138933897018433");
        assert_eq!(fmt_coord(y), "38.11555639549629859");
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
    }

    #[test]
    fn distances() {
        let p = decode_score(score_of(13.361389, 38.115556));
        let c = decode_score(score_of(15.087269, 37.502669));
        assert_eq!(
            fmt_distance(distance(p[0], p[1], c[0], c[1])),
            "166274.1516"
        );
        assert_eq!(fmt_distance(0.0), "0.0000");
        assert_eq!(fmt_distance(0.00005), "0.0000");
        assert_eq!(fmt_distance(0.5), "0.5000");
    }

    #[test]
    fn interleave_roundtrip() {
        let b = interleave(0x3ff_ffff, 0x155_5555);
        assert_eq!(squash(b), 0x3ff_ffff);
        assert_eq!(squash(b >> 1), 0x155_5555);
    }

    #[test]
    fn c_casts() {
        assert_eq!(c_u64(-1.0), u64::MAX);
        assert_eq!(c_u64(f64::INFINITY), 0);
        assert_eq!(c_i64(1e300), i64::MIN);
    }
}
