//! Set values.
//!
//! One IndexSet serves both Redis 7.0 encodings. While "intset" every member
//! is a canonical integer string and the members are kept sorted by value,
//! so iteration (SMEMBERS, SSCAN, SRANDMEMBER with a large count...) gives
//! Redis's intset order. Once "hashtable" (one-way, as in Redis) deletes
//! swap the last member in, which keeps SSCAN's positional cursor sound
//! (see `hash::scan_step`).

use indexmap::IndexSet;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Set {
    pub members: IndexSet<Vec<u8>, crate::storage::db::KeyHasher>,
    /// False while Redis would keep this set in an intset.
    pub hashtable: bool,
}

/// Redis caps intsets at 2^30 entries whatever set-max-intset-entries says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// The integer an intset can hold for `m` (Redis's string2ll rules).
pub fn as_int(m: &[u8]) -> Option<i64> {
    crate::commands::parse_i64(m)
}

impl Set {
    /// An empty set with the encoding Redis's setTypeCreate picks for a set
    /// whose first member will be `first`.
    pub fn new_for(first: &[u8]) -> Self {
        Set {
            members: IndexSet::default(),
            hashtable: as_int(first).is_none(),
        }
    }

    /// An empty intset (the start of SINTERSTORE/SUNION/SDIFF results).
    pub fn new_intset() -> Self {
        Set::default()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        if self.hashtable {
            "hashtable"
        } else {
            "intset"
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.members.contains(m)
    }

    /// Members in iteration order (what DEBUG DIGEST-VALUE xors).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|m| m.as_slice())
    }

    pub fn get_index(&self, i: usize) -> Option<&[u8]> {
        self.members.get_index(i).map(|m| m.as_slice())
    }

    pub fn convert_to_hashtable(&mut self) {
        self.hashtable = true;
    }

    /// Adds a member. Returns true when it is new. `max_intset` is
    /// set-max-intset-entries.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if self.hashtable {
            return self.members.insert(m.to_vec());
        }
        let Some(v) = as_int(m) else {
            self.hashtable = true;
            return self.members.insert(m.to_vec());
        };
        if self.members.contains(m) {
            return false;
        }
        let pos = self
            .members
            .as_slice()
            .partition_point(|x| as_int(x).unwrap_or(i64::MIN) < v);
        self.members.shift_insert(pos, m.to_vec());
        if self.members.len() > max_intset.min(INTSET_HARD_MAX) {
            self.hashtable = true;
        }
        true
    }

    /// Removes a member. Returns true when it existed.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        if self.hashtable {
            self.members.swap_remove(m)
        } else {
            self.members.shift_remove(m)
        }
    }

    /// Removes and returns the member at position `i`.
    pub fn remove_index(&mut self, i: usize) -> Option<Vec<u8>> {
        if self.hashtable {
            self.members.swap_remove_index(i)
        } else {
            self.members.shift_remove_index(i)
        }
    }

    /// Builds a set from members (RESTORE, tests), picking the encoding the
    /// way SADD would.
    pub fn from_members<M: AsRef<[u8]>>(
        members: impl IntoIterator<Item = M>,
        max_intset: usize,
    ) -> Self {
        let mut it = members.into_iter().peekable();
        let mut s = match it.peek() {
            Some(first) => Set::new_for(first.as_ref()),
            None => Set::default(),
        };
        for m in it {
            s.add(m.as_ref(), max_intset);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<String> {
        s.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn intset_order_and_conversion() {
        let mut s = Set::new_for(b"5");
        for m in ["5", "-3", "10", "0", "5", "-20"] {
            s.add(m.as_bytes(), 512);
        }
        assert_eq!(members(&s), ["-20", "-3", "0", "5", "10"]);
        assert_eq!(s.encoding(), "intset");
        s.remove(b"0");
        assert_eq!(members(&s), ["-20", "-3", "5", "10"]);
        // Non-canonical integers are strings.
        s.add(b"007", 512);
        assert_eq!(s.encoding(), "hashtable");
        s.remove(b"007");
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::new_for(b"1");
        s.add(b"1", 2);
        s.add(b"2", 2);
        assert_eq!(s.encoding(), "intset");
        s.add(b"3", 2);
        assert_eq!(s.encoding(), "hashtable");

        assert_eq!(Set::new_for(b"a").encoding(), "hashtable");
        let s = Set::from_members(["9", "-9223372036854775808", "9223372036854775807"], 512);
        assert_eq!(
            members(&s),
            ["-9223372036854775808", "9", "9223372036854775807"]
        );
    }
}
