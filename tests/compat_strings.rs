//! String commands: keel vs stock redis-server, byte for byte.

#[macro_use]
mod common;

use common::{Pair, now_ms};

pair_tests!(
    set_get_options,
    set_expire_options,
    setnx_setex_psetex,
    mget_mset_msetnx,
    getset_getdel_getex,
    append_strlen,
    integer_counters,
    incrbyfloat,
    getrange_substr_setrange,
    lcs,
    setbit_getbit_bitcount_bitpos,
    bitop,
    bitfield,
    binary_safety,
    big_value,
    many_keys_across_shards,
    encodings_after_in_place_changes,
);

/// OBJECT ENCODING after commands that rewrite a string: the INCR family
/// and INCRBYFLOAT store a new value (int / embstr again), APPEND and
/// SETRANGE leave it raw.
fn encodings_after_in_place_changes(p: &mut Pair) {
    p.checks(&[
        "SET n 12",
        "OBJECT ENCODING n",
        "APPEND n 3",
        "OBJECT ENCODING n",
        "INCR n",
        "OBJECT ENCODING n",
        "APPEND n 4",
        "DECRBY n 5",
        "OBJECT ENCODING n",
        "SETRANGE n 0 9",
        "OBJECT ENCODING n",
        "INCRBY n 1",
        "OBJECT ENCODING n",
        "SET f 1.5",
        "APPEND f 0",
        "OBJECT ENCODING f",
        "INCRBYFLOAT f 1",
        "OBJECT ENCODING f",
        "SET s abc",
        "APPEND s def",
        "OBJECT ENCODING s",
        "SET s abcdef",
        "OBJECT ENCODING s",
    ]);
}

fn set_get_options(p: &mut Pair) {
    p.checks(&[
        "GET k",
        "SET k v",
        "GET k",
        "SET k v2 NX",
        "GET k",
        "SET k v3 XX",
        "GET k",
        "SET newk v XX",
        "GET newk",
        "SET newk v NX",
        "GET newk",
        "set k lower nx",
        "set k lower xx",
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v GET",
        "SET k v4 GET",
        "SET nothere v GET",
        "GET nothere",
        "SET k v5 NX GET",
        "SET k v6 XX GET",
        "SET nothere2 v NX GET",
        "SET nothere3 v XX GET",
        "GET k",
        "SET k v GET GET",
        "SET k v FOO",
        "SET k v NX FOO",
        "SET k",
        "SET",
        "GET",
        "GET a b",
        "SET k v EX",
        "SET k v PX",
        "SET k v KEEPTTL",
        "SET k v KEEPTTL KEEPTTL",
        "SET k v NX NX",
        "SET k v XX XX",
        "SET \"\" \"\"",
        "GET \"\"",
        "SET k \"\"",
        "GET k",
        "STRLEN k",
    ]);
}

fn set_expire_options(p: &mut Pair) {
    p.checks(&[
        "SET k v EX 100",
        "SET k v PX 100000",
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v PX 0",
        "SET k v PX -5",
        "SET k v EX abc",
        "SET k v PX 1.5",
        "SET k v EX 10 PX 100",
        "SET k v PX 100 EX 10",
        "SET k v EX 10 EX 10",
        "SET k v EX 10 KEEPTTL",
        "SET k v KEEPTTL EX 10",
        "SET k v EX 10 EXAT 10",
        "SET k v PXAT 10 EXAT 10",
        "SET k v EX 9223372036854775807",
        "SET k v PX 9223372036854775807",
        "SET k v EX 9223372036854775",
        "SET k v EXAT 9223372036854775807",
        "SET k v EXAT 0",
        "SET k v PXAT 0",
        "SET k v EXAT -1",
        "GET k",
        "TTL k",
    ]);
    p.check("SET k v EX 100");
    p.check_int_close("TTL k", 0);
    p.check_int_close("PTTL k", common::PTTL_TOLERANCE_MS);
    // KEEPTTL keeps it, plain SET drops it.
    p.check("SET k v2 KEEPTTL");
    p.check_int_close("TTL k", 0);
    p.check("SET k v3 XX KEEPTTL GET");
    p.check_int_close("TTL k", 0);
    p.check("SET k v4");
    p.check("TTL k");
    p.check("SET k v PX 123456 GET");
    p.check_int_close("PTTL k", common::PTTL_TOLERANCE_MS);
    let at = now_ms() / 1000 + 500;
    p.check(&format!("SET ka v EXAT {at}"));
    p.check("EXPIRETIME ka");
    p.check_int_close("TTL ka", 1);
    let pat = now_ms() + 700_000;
    p.check(&format!("SET kp v PXAT {pat}"));
    p.check("PEXPIRETIME kp");
    p.check_int_close("PTTL kp", common::PTTL_TOLERANCE_MS);
    // Expiry time already in the past: the key is gone at once.
    p.check("SET past v EXAT 1");
    p.check("GET past");
    p.check("EXISTS past");
    p.check(&format!("SET past v PXAT {}", now_ms() - 1000));
    p.check("EXISTS past");
    p.check("SET k v ex 50 nx");
    p.check("SET k2 v ex 50 nx");
    p.check_int_close("TTL k2", 0);
    p.check("SET k2 v px 50000 xx get");
    p.check_int_close("TTL k2", 0);
    // An expired key is absent for NX / XX / GET.
    p.check("SET short v PX 30");
    std::thread::sleep(std::time::Duration::from_millis(80));
    p.checks(&[
        "SET short v2 XX",
        "GET short",
        "SET short v3 NX GET",
        "GET short",
    ]);
}

fn setnx_setex_psetex(p: &mut Pair) {
    p.checks(&[
        "SETNX a 1",
        "SETNX a 2",
        "GET a",
        "SETNX a",
        "SETEX b 100 v",
        "GET b",
        "SETEX b 0 v",
        "SETEX b -5 v",
        "SETEX b abc v",
        "SETEX b 9223372036854775807 v",
        "SETEX b 100",
        "PSETEX c 100000 v",
        "GET c",
        "PSETEX c 0 v",
        "PSETEX c -1 v",
        "PSETEX c 1e3 v",
        "PSETEX c 9223372036854775807 v",
    ]);
    p.check_int_close("TTL b", 0);
    p.check_int_close("PTTL c", common::PTTL_TOLERANCE_MS);
    p.check("SETEX a 50 new");
    p.check("GET a");
    p.check_int_close("TTL a", 0);
    p.check("SETNX a again");
}

fn mget_mset_msetnx(p: &mut Pair) {
    p.checks(&[
        "MSET x 1 y 2 z 3",
        "MGET x y z nokey",
        "MGET nokey",
        "MGET x",
        "MGET",
        "MSET x",
        "MSET x 1 y",
        "MSET x 10 x 20",
        "GET x",
        "MSETNX x 1 new 2",
        "GET new",
        "MSETNX n1 1 n2 2",
        "MGET n1 n2",
        "MSETNX n3 1 n3 2",
        "GET n3",
        "MSETNX n4",
        "MSETNX n4 1 n5",
    ]);
    p.check("SET withttl v EX 100");
    p.check("MSET withttl v2");
    p.check("TTL withttl");
}

fn getset_getdel_getex(p: &mut Pair) {
    p.checks(&[
        "GETSET x 10",
        "GETSET x 20",
        "GET x",
        "GETSET x",
        "GETDEL x",
        "GETDEL x",
        "EXISTS x",
        "GETDEL a b",
        "SET y v",
        "GETEX y",
        "GETEX nokey",
        "GETEX nokey EX 10",
        "GETEX y EX 100",
        "GETEX y PERSIST",
        "TTL y",
        "GETEX y EX 0",
        "GETEX y EX -1",
        "GETEX y PX 0",
        "GETEX y EX abc",
        "GETEX y EX 10 PX 10",
        "GETEX y PERSIST EX 10",
        "GETEX y EX 10 PERSIST",
        "GETEX y FOO",
        "GETEX y EX",
        "GETEX y KEEPTTL",
        "GETEX y EX 9223372036854775807",
        "GETEX y EXAT 9223372036854775807",
        "TTL y",
    ]);
    p.check("GETEX y EX 100");
    p.check_int_close("TTL y", 0);
    p.check("GETEX y PX 200000");
    p.check_int_close("PTTL y", common::PTTL_TOLERANCE_MS);
    p.check(&format!("GETEX y EXAT {}", now_ms() / 1000 + 300));
    p.check("EXPIRETIME y");
    p.check(&format!("GETEX y PXAT {}", now_ms() + 400_000));
    p.check("PEXPIRETIME y");
    p.check("GETEX y PERSIST");
    p.check("TTL y");
    // Expiry in the past deletes the key, still returning the value.
    p.check("GETEX y EXAT 1");
    p.check("EXISTS y");
    p.check("SET g v EX 100");
    p.check("GETSET g v2");
    p.check("TTL g");
    p.check("SET g v EX 100");
    p.check("GETDEL g");
    p.check("TTL g");
}

fn append_strlen(p: &mut Pair) {
    p.checks(&[
        "APPEND ap hello",
        "APPEND ap \" world\"",
        "GET ap",
        "STRLEN ap",
        "STRLEN nokey",
        "APPEND ap \"\"",
        "APPEND empty \"\"",
        "EXISTS empty",
        "GET empty",
        "SET n 12",
        "APPEND n 34",
        "GET n",
        "INCR n",
        "STRLEN n",
        "SET n 100",
        "STRLEN n",
        "APPEND ap",
        "STRLEN",
        "STRLEN a b",
    ]);
    p.check("SET t v EX 100");
    p.check("APPEND t more");
    p.check_int_close("TTL t", 0);
}

fn integer_counters(p: &mut Pair) {
    p.checks(&[
        "SET n 10",
        "INCR n",
        "DECR n",
        "INCRBY n 5",
        "DECRBY n 3",
        "INCRBY n -100",
        "DECRBY n -100",
        "GET n",
        "INCR c1",
        "DECR c2",
        "INCRBY c3 7",
        "DECRBY c4 7",
        "SET n 9223372036854775806",
        "INCR n",
        "INCR n",
        "GET n",
        "INCRBY n 0",
        "SET n -9223372036854775807",
        "DECR n",
        "DECR n",
        "GET n",
        "SET n 0",
        "DECRBY n -9223372036854775808",
        "INCRBY n -9223372036854775808",
        "INCRBY n 9223372036854775807",
        "SET n 5",
        "INCRBY n 9223372036854775807",
        "INCRBY n 9223372036854775808",
        "INCRBY n -9223372036854775809",
        "INCRBY n abc",
        "INCRBY n 1.5",
        "INCRBY n \"\"",
        "INCRBY n \" 1\"",
        "INCRBY n 01",
        "INCRBY n +1",
        "INCRBY n -0",
        "GET n",
        "SET s abc",
        "INCR s",
        "DECR s",
        "SET s \" 1\"",
        "INCR s",
        "SET s \"1 \"",
        "INCR s",
        "SET s 01",
        "INCR s",
        "SET s +1",
        "INCR s",
        "SET s -0",
        "INCR s",
        "SET s \"\"",
        "INCR s",
        "SET s 1.0",
        "INCR s",
        "SET s 9223372036854775808",
        "INCR s",
        "SET s -9223372036854775808",
        "INCR s",
        "DECR s",
        "GET s",
        "INCR",
        "INCR a b",
        "INCRBY a",
        "DECRBY a 1 2",
        "SET i 123",
        "OBJECT ENCODING i",
        "INCR i",
        "OBJECT ENCODING i",
    ]);
    p.check("SET t 5 EX 100");
    p.check("INCR t");
    p.check_int_close("TTL t", 0);
}

fn incrbyfloat(p: &mut Pair) {
    p.checks(&[
        "SET f 10.5",
        "INCRBYFLOAT f 0.1",
        "GET f",
        "INCRBYFLOAT f -5.6",
        "INCRBYFLOAT f -5",
        "SET f 3.0e3",
        "INCRBYFLOAT f 1",
        "INCRBYFLOAT f 5.0e-3",
        "INCRBYFLOAT f 3.0e3",
        "INCRBYFLOAT newf 1.5",
        "INCRBYFLOAT newf2 5.0e-3",
        "INCRBYFLOAT newf3 1e20",
        "INCRBYFLOAT newf4 1.5e20",
        "INCRBYFLOAT newf5 1e-20",
        "INCRBYFLOAT newf6 1e300",
        "INCRBYFLOAT newf6 1e300",
        "INCRBYFLOAT newf7 -1e308",
        "INCRBYFLOAT newf8 1e400",
        "INCRBYFLOAT newf9 123456789012345678901234567890",
        "INCRBYFLOAT newf10 0.1",
        "INCRBYFLOAT newf10 0.2",
        "INCRBYFLOAT newf11 1.23456789012345678",
        "INCRBYFLOAT newf12 -0",
        "INCRBYFLOAT newf13 0.0",
        "INCRBYFLOAT newf14 3",
        "INCRBYFLOAT newf15 3.",
        "INCRBYFLOAT newf16 .5",
        "INCRBYFLOAT newf17 0x10",
        "INCRBYFLOAT newf18 1e",
        "SET big 1.7e308",
        "INCRBYFLOAT big 1.7e308",
        "GET big",
        "INCRBYFLOAT big -1.7e308",
        "INCRBYFLOAT f inf",
        "INCRBYFLOAT f -inf",
        "INCRBYFLOAT f nan",
        "INCRBYFLOAT f abc",
        "INCRBYFLOAT f \"\"",
        "INCRBYFLOAT f \" 1\"",
        "INCRBYFLOAT f \"1 \"",
        "SET f 1",
        "INCRBYFLOAT f -1",
        "GET f",
        "SET f abc",
        "INCRBYFLOAT f 1",
        "SET f \" 1.5\"",
        "INCRBYFLOAT f 1",
        "SET f 1e5",
        "INCRBYFLOAT f 0",
        "SET f 5000000000000000000000",
        "INCRBYFLOAT f 1",
        "SET f 0.000001",
        "INCRBYFLOAT f 0.0000001",
        "SET f 7",
        "INCRBYFLOAT f 1e-17",
        "INCRBYFLOAT f",
        "INCRBYFLOAT f 1 2",
    ]);
    p.check("SET t 1.5 EX 100");
    p.check("INCRBYFLOAT t 1");
    p.check_int_close("TTL t", 0);
}

fn getrange_substr_setrange(p: &mut Pair) {
    p.checks(&[
        "SET r \"Hello World\"",
        "GETRANGE r 0 4",
        "GETRANGE r -5 -1",
        "GETRANGE r 0 -1",
        "GETRANGE r 5 3",
        "GETRANGE r -100 100",
        "GETRANGE r 0 100",
        "GETRANGE r 20 30",
        "GETRANGE r -1 -5",
        "GETRANGE r 0 0",
        "GETRANGE r -1 -1",
        "GETRANGE r 10 10",
        "GETRANGE r 11 11",
        "GETRANGE r -11 -11",
        "GETRANGE r -12 -12",
        "GETRANGE r 3 -100",
        "GETRANGE r -9223372036854775808 9223372036854775807",
        "GETRANGE nokey 0 -1",
        "GETRANGE r a b",
        "GETRANGE r 0",
        "SUBSTR r 0 4",
        "SUBSTR r -3 -1",
        "SUBSTR r 2 -3",
        "SET e \"\"",
        "GETRANGE e 0 -1",
        "GETRANGE e 0 0",
        "SET n 12345",
        "GETRANGE n 1 3",
        "GETRANGE n -2 -1",
        "SETRANGE sr 5 hello",
        "GET sr",
        "SETRANGE sr 0 X",
        "GET sr",
        "SETRANGE sr 8 longertail",
        "GET sr",
        "SETRANGE sr 30 \"\"",
        "STRLEN sr",
        "SETRANGE newsr 0 \"\"",
        "EXISTS newsr",
        "SETRANGE newsr 10 \"\"",
        "EXISTS newsr",
        "SETRANGE sr -1 x",
        "SETRANGE sr abc x",
        "SETRANGE sr 536870912 x",
        "SETRANGE sr 536870911 \"\"",
        "SETRANGE sr 536870911 ab",
        "SETRANGE n 1 9",
        "GET n",
        "INCR n",
        "SETRANGE sr 0",
        "SETRANGE empty2 0 abc",
        "GET empty2",
    ]);
}

fn lcs(p: &mut Pair) {
    p.checks(&[
        "MSET l1 ohmytext l2 mynewtext",
        "LCS l1 l2",
        "LCS l1 l2 LEN",
        "LCS l1 l2 IDX",
        "LCS l1 l2 IDX MINMATCHLEN 4",
        "LCS l1 l2 IDX MINMATCHLEN 4 WITHMATCHLEN",
        "LCS l1 l2 IDX WITHMATCHLEN",
        "LCS l1 l2 WITHMATCHLEN",
        "LCS l1 l2 LEN IDX",
        "LCS l1 l2 MINMATCHLEN 0",
        "LCS l1 l2 IDX MINMATCHLEN -1",
        "LCS l1 l2 IDX MINMATCHLEN abc",
        "LCS l1 l2 IDX MINMATCHLEN",
        "LCS l1 l2 FOO",
        "LCS l1 nokey",
        "LCS nokey1 nokey2",
        "LCS nokey1 nokey2 IDX",
        "LCS l1 l1",
        "LCS l1",
        "MSET a1 \"\" a2 abc",
        "LCS a1 a2",
        "LCS a1 a2 LEN",
        "LCS a1 a2 IDX",
        "MSET x1 ABCBDAB x2 BDCABA",
        "LCS x1 x2",
        "LCS x1 x2 IDX WITHMATCHLEN",
        "MSET {t}1 \"the quick brown fox\" {t}2 \"a quick brown dog\"",
        "LCS {t}1 {t}2",
        "LCS {t}1 {t}2 IDX MINMATCHLEN 2 WITHMATCHLEN",
    ]);
}

fn setbit_getbit_bitcount_bitpos(p: &mut Pair) {
    p.checks(&[
        "SETBIT b 7 1",
        "GET b",
        "SETBIT b 7 0",
        "SETBIT b 7 1",
        "SETBIT b 100 1",
        "STRLEN b",
        "GETBIT b 100",
        "GETBIT b 7",
        "GETBIT b 6",
        "GETBIT b 1000",
        "GETBIT nokey 0",
        "SETBIT b 1 2",
        "SETBIT b 1 -1",
        "SETBIT b 1 a",
        "SETBIT b -1 1",
        "SETBIT b 4294967296 1",
        "GETBIT b -1",
        "GETBIT b 4294967296",
        "GETBIT b abc",
        "SETBIT b 1",
        "SET bc foobar",
        "BITCOUNT bc",
        "BITCOUNT bc 0 0",
        "BITCOUNT bc 1 1",
        "BITCOUNT bc 1 -2",
        "BITCOUNT bc -100 100",
        "BITCOUNT bc 4 2",
        "BITCOUNT bc 5 30 BIT",
        "BITCOUNT bc 0 -1 BIT",
        "BITCOUNT bc -3 -1 BIT",
        "BITCOUNT bc 0 -1 BYTE",
        "BITCOUNT bc 0 -1 bit",
        "BITCOUNT bc 0 -1 FOO",
        "BITCOUNT bc 0",
        "BITCOUNT bc a b",
        "BITCOUNT bc 0 1 BIT extra",
        "BITCOUNT nokey",
        "BITCOUNT nokey 0 10",
        "SET bp \"\\xff\\xf0\\x00\"",
        "BITPOS bp 0",
        "BITPOS bp 1",
        "BITPOS bp 1 2",
        "BITPOS bp 0 1",
        "BITPOS bp 0 0 -1",
        "BITPOS bp 0 0 -1 BIT",
        "BITPOS bp 1 7 15 BIT",
        "BITPOS bp 0 7 15 BIT",
        "BITPOS bp 1 2 -1 BYTE",
        "BITPOS bp 0 -1",
        "BITPOS bp 1 -1",
        "BITPOS bp 1 5 3",
        "BITPOS bp 2",
        "BITPOS bp 1 a",
        "BITPOS bp 1 0 1 FOO",
        "SET bz \"\\x00\\x00\"",
        "BITPOS bz 1",
        "BITPOS bz 0",
        "SET bf \"\\xff\\xff\"",
        "BITPOS bf 0",
        "BITPOS bf 0 0",
        "BITPOS bf 0 0 -1",
        "BITPOS bf 0 0 -1 BIT",
        "BITPOS bf 1",
        "BITPOS nokey 0",
        "BITPOS nokey 1",
        "SET empty \"\"",
        "BITCOUNT empty",
        "BITPOS empty 0",
        "BITPOS empty 1",
        "GETBIT empty 0",
    ]);
}

fn bitop(p: &mut Pair) {
    p.checks(&[
        "SET k1 foobar",
        "SET k2 abcdef",
        "SET k3 \"\\x00\\xff\"",
        "BITOP AND dest k1 k2",
        "GET dest",
        "BITOP OR dest k1 k2",
        "GET dest",
        "BITOP XOR dest k1 k2 k3",
        "GET dest",
        "BITOP NOT dest k1",
        "GET dest",
        "BITOP NOT dest k3",
        "GET dest",
        "BITOP NOT dest k1 k2",
        "BITOP and dest k1 nokey",
        "GET dest",
        "BITOP OR dest k3 nokey",
        "GET dest",
        "BITOP FOO dest k1",
        "BITOP AND dest",
        "BITOP AND dest nokey1 nokey2",
        "EXISTS dest",
        "SET dest x",
        "BITOP OR dest nokey1",
        "EXISTS dest",
        "BITOP NOT dest nokey",
        "EXISTS dest",
        "BITOP AND k1 k1 k2",
        "GET k1",
        "MSET {h}a abc {h}b \"\\x01\\x02\"",
        "BITOP XOR {h}c {h}a {h}b",
        "GET {h}c",
    ]);
}

fn bitfield(p: &mut Pair) {
    p.checks(&[
        "BITFIELD bf SET i8 0 100 GET i8 0",
        "BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1",
        "BITFIELD bf OVERFLOW FAIL INCRBY i8 0 100",
        "BITFIELD bf OVERFLOW WRAP INCRBY i8 0 100",
        "BITFIELD bf OVERFLOW SAT INCRBY i8 0 200",
        "BITFIELD bf OVERFLOW SAT INCRBY i8 0 -1000",
        "BITFIELD bf GET u4 0 GET i5 #1",
        "BITFIELD bf SET u8 #2 200",
        "BITFIELD bf GET u8 #2",
        "BITFIELD bf GET i64 0",
        "BITFIELD bf GET u63 0",
        "BITFIELD bf SET i64 0 -1",
        "BITFIELD bf GET i64 0",
        "BITFIELD bf INCRBY i64 0 1",
        "BITFIELD bf OVERFLOW FAIL INCRBY i64 0 -9223372036854775807 INCRBY i64 0 -9223372036854775807",
        "BITFIELD bf GET u64 0",
        "BITFIELD bf GET i65 0",
        "BITFIELD bf GET i0 0",
        "BITFIELD bf GET x8 0",
        "BITFIELD bf GET u8 -1",
        "BITFIELD bf GET u8 abc",
        "BITFIELD bf SET u8 0 abc",
        "BITFIELD bf FOO",
        "BITFIELD bf GET",
        "BITFIELD bf GET u8",
        "BITFIELD bf OVERFLOW",
        "BITFIELD bf OVERFLOW FOO GET u8 0",
        "BITFIELD bf",
        "BITFIELD nokey GET u8 0",
        "EXISTS nokey",
        "BITFIELD nokey2 SET u1 0 1",
        "GET nokey2",
        "BITFIELD bf2 SET u16 #0 65535 SET u16 #1 256 GET u32 0",
        "BITFIELD bf2 INCRBY u16 #0 1 INCRBY u16 #1 -300",
        "BITFIELD bf2 OVERFLOW SAT INCRBY u16 #1 -300 OVERFLOW FAIL INCRBY u16 #1 -300",
        "GET bf2",
        "BITFIELD_RO bf GET u8 0 GET i4 4",
        "BITFIELD_RO bf SET u8 0 1",
        "BITFIELD_RO bf INCRBY u8 0 1",
        "BITFIELD_RO nokey GET u8 0",
        "BITFIELD_RO bf",
        "BITFIELD bf SET u8 #536870912 1",
        "BITFIELD bf SET u8 4294967296 1",
    ]);
}

fn binary_safety(p: &mut Pair) {
    let keys: [&[u8]; 6] = [
        b"a\0b",
        b"\r\n",
        b"\0",
        b"key with spaces",
        b"\xff\xfe\x00\x01",
        b"*1\r\n$4\r\nPING\r\n",
    ];
    let vals: [&[u8]; 6] = [
        b"\0\0\0",
        b"line1\r\nline2\r\n",
        b"",
        b"$-1\r\n",
        b"\xc3\x28 invalid utf8",
        b"\r\n\r\n\0",
    ];
    for (k, v) in keys.iter().zip(vals.iter()) {
        p.check_args(&[b"SET".as_slice(), k, v]);
        p.check_args(&[b"GET".as_slice(), k]);
        p.check_args(&[b"STRLEN".as_slice(), k]);
        p.check_args(&[b"APPEND".as_slice(), k, b"\0\r\n"]);
        p.check_args(&[b"GETRANGE".as_slice(), k, b"0", b"-1"]);
        p.check_args(&[b"EXISTS".as_slice(), k]);
    }
    let mut mget = vec![b"MGET".to_vec()];
    mget.extend(keys.iter().map(|k| k.to_vec()));
    mget.push(b"missing\0".to_vec());
    p.check_args(&mget);
    p.check_args(&[b"SET".as_slice(), b"", b"empty key"]);
    p.check_args(&[b"GET".as_slice(), b""]);
    p.check_args(&[b"SET".as_slice(), b"e", b""]);
    p.check_args(&[b"GET".as_slice(), b"e"]);
    p.check_args(&[b"APPEND".as_slice(), b"e", b""]);
    p.check_args(&[b"INCR".as_slice(), b"\0"]);
    p.check_args(&[b"SET".as_slice(), b"n\0", b"1\0"]);
    p.check_args(&[b"INCR".as_slice(), b"n\0"]);
    p.check_args(&[b"DEL".as_slice(), b"a\0b", b"\0", b"a"]);
    p.check_args(&[b"EXISTS".as_slice(), b"a\0b", b"\0"]);
}

fn pattern_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 256) as u8).collect()
}

fn big_value(p: &mut Pair) {
    let mb = pattern_bytes(1 << 20);
    p.check_args(&[b"SET".as_slice(), b"big", &mb]);
    p.check("STRLEN big");
    p.check("GET big");
    p.check("GETRANGE big 1048000 1048100");
    p.check("GETRANGE big -10 -1");
    p.check("APPEND big tail");
    p.check("BITCOUNT big");
    p.check("SETRANGE big 2000000 x");
    p.check("STRLEN big");
    p.check("GET big");
    p.check_args(&[b"SET".as_slice(), b"big2", &mb[..1000]]);
    p.check_args(&[b"GETSET".as_slice(), b"big2", &mb]);
    p.check("MGET big2 big nokey");
    p.check("GETDEL big2");
    p.check("EXISTS big2");
}

fn many_keys_across_shards(p: &mut Pair) {
    let n = 300;
    let mut mset = vec!["MSET".to_string()];
    for i in 0..n {
        mset.push(format!("key:{i}"));
        mset.push(format!("value-{i}"));
    }
    p.check_args(&mset);
    let mut mget = vec!["MGET".to_string()];
    for i in 0..n + 20 {
        mget.push(format!("key:{i}"));
    }
    p.check_args(&mget);
    p.check("DBSIZE");
    // All-or-nothing across shards: one existing key blocks every other.
    let mut msetnx = vec!["MSETNX".to_string()];
    for i in (0..n).rev().step_by(7) {
        msetnx.push(format!("fresh:{i}"));
        msetnx.push("x".into());
    }
    msetnx.push("key:150".into());
    msetnx.push("x".into());
    p.check_args(&msetnx);
    p.check("EXISTS fresh:0 fresh:7 fresh:14 fresh:299 key:150");
    p.check("GET key:150");
    msetnx.truncate(msetnx.len() - 2);
    p.check_args(&msetnx);
    p.check("MGET fresh:5 fresh:12 fresh:299 fresh:292");
    p.check("DBSIZE");
    let mut del = vec!["DEL".to_string()];
    for i in (0..n).step_by(3) {
        del.push(format!("key:{i}"));
    }
    p.check_args(&del);
    p.check_args(&mget);
    let mut exists = vec!["EXISTS".to_string()];
    for i in 0..n {
        exists.push(format!("key:{i}"));
    }
    p.check_args(&exists);
    p.check("DBSIZE");
    // The same key written twice in one MSET: the last value wins.
    p.check("MSET dup 1 key:1 a dup 2 key:2 b dup 3");
    p.check("MGET dup key:1 key:2");
    for i in 0..50 {
        p.check(&format!("INCRBY ctr:{} {}", i % 13, i));
    }
    p.check(
        "MGET ctr:0 ctr:1 ctr:2 ctr:3 ctr:4 ctr:5 ctr:6 ctr:7 ctr:8 ctr:9 ctr:10 ctr:11 ctr:12",
    );
}
