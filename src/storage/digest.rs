//! DEBUG DIGEST / DIGEST-VALUE, computed exactly as Redis's debug.c does so
//! that keel and redis-server holding the same data print the same hex.
//!
//! Unordered collections (keys of a DB, set members...) are combined with
//! XOR of SHA1s; ordered sequences (a key then its value, list elements) are
//! chained with `mix`, which feeds the running digest back into SHA1.

use sha1::{Digest, Sha1};

use super::{Db, Entry, Value};
use crate::protocol::fmt_double;

pub type Sha = [u8; 20];

/// digest ^= SHA1(data)
pub fn xor_digest(digest: &mut Sha, data: &[u8]) {
    let h = Sha1::digest(data);
    for (d, b) in digest.iter_mut().zip(h.iter()) {
        *d ^= b;
    }
}

/// digest = SHA1(digest ^ SHA1(data))
pub fn mix_digest(digest: &mut Sha, data: &[u8]) {
    xor_digest(digest, data);
    let h = Sha1::digest(&digest[..]);
    digest.copy_from_slice(&h);
}

/// Redis's OBJ_* type codes, hashed big-endian into every value digest.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        // module 5
        Value::Stream(_) => 6,
    }
}

/// Mixes one value (type, contents, expire flag) into `digest`, like
/// Redis's xorObjectDigest. The expire time itself is not hashed, only
/// whether there is one.
pub fn mix_value(digest: &mut Sha, entry: &Entry) {
    mix_digest(digest, &type_code(&entry.value).to_be_bytes());
    // Integer-encoded strings and elements hash their decimal form, which
    // is exactly the bytes stored here (Redis int-encodes canonical forms only).
    match &entry.value {
        Value::Str(s) => mix_digest(digest, s),
        // Ordered: chained.
        Value::List(l) => l.items.iter().for_each(|e| mix_digest(digest, e)),
        // Unordered: xor of each member.
        Value::Set(set) => set.iter().for_each(|m| xor_digest(digest, m)),
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, m);
                mix_digest(&mut e, fmt_double(score).as_bytes());
                xor_digest(digest, &e);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut e = [0u8; 20];
                mix_digest(&mut e, f);
                mix_digest(&mut e, v);
                xor_digest(digest, &e);
            }
        }
        // Entries in ID order: "ms.seq", then each field and value (consumer
        // groups are not part of the digest, as in Redis).
        Value::Stream(st) => {
            for (id, fields) in st.digest_entries() {
                mix_digest(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (f, v) in fields {
                    mix_digest(digest, f);
                    mix_digest(digest, v);
                }
            }
        }
    }
    if entry.has_ttl() {
        xor_digest(digest, b"!!expire!!");
    }
}

/// DEBUG DIGEST-VALUE of one entry (all zeros for a missing key).
pub fn value_digest(entry: Option<&Entry>) -> Sha {
    let mut d = [0u8; 20];
    if let Some(e) = entry {
        mix_value(&mut d, e);
    }
    d
}

/// XOR over SHA1(key+value digest) of every key in `db`, including
/// logically expired keys not yet deleted (Redis iterates the raw dict).
/// Keys of one DB spread over shards combine by XOR-ing these.
pub fn db_keys_xor(db: &Db) -> Sha {
    let mut acc = [0u8; 20];
    for (k, e) in &db.dict {
        let mut d = [0u8; 20];
        mix_digest(&mut d, k);
        mix_value(&mut d, e);
        // Redis xors SHA1(key digest) into the total, not the digest itself.
        xor_digest(&mut acc, &d);
    }
    acc
}

/// Folds DB number `dbid` (whose keys XOR to `keys_xor`) into the dataset
/// digest. Call in ascending DB order, skipping empty DBs, as Redis does.
pub fn add_db(final_digest: &mut Sha, dbid: usize, keys_xor: &Sha) {
    mix_digest(final_digest, &(dbid as u32).to_be_bytes());
    for (f, b) in final_digest.iter_mut().zip(keys_xor.iter()) {
        *f ^= b;
    }
}

pub fn hex(d: &Sha) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Str;

    fn dataset(dbs: &[&Db]) -> String {
        let mut f = [0u8; 20];
        for (i, db) in dbs.iter().enumerate() {
            if !db.is_empty() {
                add_db(&mut f, i, &db_keys_xor(db));
            }
        }
        hex(&f)
    }

    #[test]
    fn empty_is_zero() {
        let db = Db::default();
        assert_eq!(dataset(&[&db]), "0".repeat(40));
        assert_eq!(hex(&value_digest(None)), "0".repeat(40));
    }

    #[test]
    fn order_independent_and_split_by_shard() {
        let mut a = Db::default();
        a.set(b"k1", Value::Str(Str::from(b"v1".to_vec())));
        a.set(b"k2", Value::Str(Str::from(b"v2".to_vec())));
        let mut b = Db::default();
        b.set(b"k2", Value::Str(Str::from(b"v2".to_vec())));
        b.set(b"k1", Value::Str(Str::from(b"v1".to_vec())));
        assert_eq!(dataset(&[&a]), dataset(&[&b]));

        // The same keys split across two shards' DB 0.
        let mut s1 = Db::default();
        s1.set(b"k1", Value::Str(Str::from(b"v1".to_vec())));
        let mut s2 = Db::default();
        s2.set(b"k2", Value::Str(Str::from(b"v2".to_vec())));
        let mut f = [0u8; 20];
        let mut x = db_keys_xor(&s1);
        for (p, q) in x.iter_mut().zip(db_keys_xor(&s2).iter()) {
            *p ^= q;
        }
        add_db(&mut f, 0, &x);
        assert_eq!(hex(&f), dataset(&[&a]));

        // Expire flag changes the digest; the time does not.
        let mut c = Db::default();
        c.set_with_expire(b"k1", Value::Str(Str::from(b"v1".to_vec())), 1000);
        let mut d = Db::default();
        d.set_with_expire(b"k1", Value::Str(Str::from(b"v1".to_vec())), 2000);
        assert_eq!(dataset(&[&c]), dataset(&[&d]));
        assert_ne!(dataset(&[&c]), dataset(&[&s1]));
    }

    /// Values printed by redis-server 7.0.15 for the same writes.
    #[test]
    fn matches_redis() {
        let mut db0 = Db::default();
        db0.set(b"foo", Value::Str(Str::from(b"bar".to_vec())));
        assert_eq!(dataset(&[&db0]), "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a");
        assert_eq!(
            hex(&value_digest(db0.dict.get(&b"foo"[..]))),
            "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
        );
        db0.set_with_expire(b"n", Value::Str(Str::from(b"12345".to_vec())), u64::MAX / 2);
        assert_eq!(dataset(&[&db0]), "8642e4878ba9bfbee925cb8441ceb4037b4374bf");
        let (db1, db2) = (Db::default(), Db::default());
        let mut db3 = Db::default();
        db3.set(b"foo", Value::Str(Str::from(b"bar".to_vec())));
        assert_eq!(
            dataset(&[&db0, &db1, &db2, &db3]),
            "22fd7260dca5751fc1c4118bc334ad65c0bdd070"
        );
    }

    /// Aggregates, checked against redis-server 7.0.15 (RPUSH l a b 1 2;
    /// SADD s a 1 b; ZADD z 1.5 a 2 b -inf c 0.1 d; HSET h f v f2 2).
    #[test]
    fn aggregates_match_redis() {
        use crate::storage::{hash::Hash, list::List, set::Set, zset::ZSet};
        let b = |s: &str| s.as_bytes().to_vec();
        let entry = |value| Entry::new(value, 0);
        let l = entry(Value::List(Box::new(List {
            items: ["a", "b", "1", "2"].iter().map(|s| b(s)).collect(),
        })));
        let st = entry(Value::Set(Set::from_members(["a", "1", "b"], 512)));
        let mut zs = ZSet::new();
        for (m, sc) in [("a", 1.5), ("b", 2.0), ("c", f64::NEG_INFINITY), ("d", 0.1)] {
            let lim = crate::storage::zset::Limits {
                entries: 128,
                value: 64,
            };
            zs.insert_new(m.as_bytes(), sc, lim);
        }
        let z = entry(Value::ZSet(zs));
        let h = entry(Value::Hash(Hash::from_pairs(
            [("f", "v"), ("f2", "2")],
            Default::default(),
        )));
        let hx = |e: &Entry| hex(&value_digest(Some(e)));
        assert_eq!(hx(&l), "6b15aa298e0e4d1f6244448df32b23e74a4147ce");
        assert_eq!(hx(&st), "e8f32bbb1ad9bf537c8867de4f19fec9e001296d");
        assert_eq!(hx(&z), "62bfb771f8c711d0b763a389e9495b93e8f0bfb5");
        assert_eq!(hx(&h), "1975bda9765d0d36df5c62b918e428b50a6532fa");
        let mut db = Db::default();
        for (k, e) in [("l", l), ("s", st), ("z", z), ("h", h)] {
            db.dict.insert(k.as_bytes(), e, 0);
        }
        assert_eq!(dataset(&[&db]), "9d8dce8a337fffe4882c6316a5d9db89a6a5f8d3");
    }
}
