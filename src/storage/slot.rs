//! Key -> Redis Cluster slot -> shard.

use std::sync::OnceLock;

pub const SLOTS: usize = 16384;

/// CRC16/XMODEM, the checksum Redis Cluster uses for slots. Table-driven:
/// every keyed command computes it (routing, then the handler's store
/// lookup) once there are several shards, and the bit-by-bit loop was
/// 1.7 % of a 2-shard server's CPU (issue 23).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[((crc >> 8) as u8 ^ b) as usize]
    })
}

/// CRC16/XMODEM of each byte value (polynomial 0x1021).
const CRC16_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// The slot of a key: CRC16 of the `{hash tag}` when there is a non-empty one.
pub fn key_slot(key: &[u8]) -> usize {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return crc16(&key[open + 1..open + 1 + len]) as usize % SLOTS;
    }
    crc16(key) as usize % SLOTS
}

/// In cluster mode: the shard of each slot for this process's shard count.
static LAYOUT: OnceLock<(usize, Box<[u16]>)> = OnceLock::new();

/// Cluster mode: spreads the slots this node owns evenly over its shards
/// (the plain contiguous split would leave shards without any of our
/// slots). Slots of other nodes keep the plain split. Set once at startup,
/// before any key is placed.
pub fn set_cluster_layout(nshards: usize, owned: &[bool]) {
    let _ = LAYOUT.set((nshards, cluster_layout(nshards, owned)));
}

/// Cluster bus mode: slot `s` lives on shard `s % nshards`, so whichever
/// slots the node is given over time, they spread over every shard.
pub fn set_interleaved_layout(nshards: usize) {
    let _ = LAYOUT.set((
        nshards,
        (0..SLOTS).map(|s| (s % nshards.max(1)) as u16).collect(),
    ));
}

fn cluster_layout(nshards: usize, owned: &[bool]) -> Box<[u16]> {
    let mine = owned.iter().filter(|&&o| o).count().max(1);
    let mut rank = 0;
    owned
        .iter()
        .enumerate()
        .map(|(slot, &o)| {
            if o {
                rank += 1;
                ((rank - 1) * nshards / mine) as u16
            } else {
                (slot * nshards / SLOTS) as u16
            }
        })
        .collect()
}

/// Slots are split into contiguous ranges, one per shard (in cluster mode,
/// the node's own slots are: see `set_cluster_layout`).
pub fn slot_shard(slot: usize, nshards: usize) -> usize {
    if let Some((n, table)) = LAYOUT.get()
        && *n == nshards
    {
        return table[slot] as usize;
    }
    slot * nshards / SLOTS
}

pub fn key_shard(key: &[u8], nshards: usize) -> usize {
    if nshards == 1 {
        return 0;
    }
    slot_shard(key_slot(key), nshards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_table_matches_bitwise() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc: u16 = 0;
            for &b in data {
                crc ^= (b as u16) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x1021
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        }
        // The XMODEM check value.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..data.len() {
            assert_eq!(crc16(&data[..len]), bitwise(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn slots_match_redis_cluster() {
        // Values from CLUSTER KEYSLOT on stock Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16(b"foo{}{bar}") as usize % SLOTS
        );
        assert_eq!(slot_shard(16383, 4), 3);
        assert_eq!(slot_shard(0, 4), 0);
    }

    #[test]
    fn cluster_layout_spreads_own_slots_over_every_shard() {
        // A node owning 0-8191 with 2 shards: half of its slots on each.
        let owned: Vec<bool> = (0..SLOTS).map(|s| s < 8192).collect();
        let t = cluster_layout(2, &owned);
        assert_eq!(t[0], 0);
        assert_eq!(t[4095], 0);
        assert_eq!(t[4096], 1);
        assert_eq!(t[8191], 1);
        // Slots of other nodes keep the plain split.
        assert_eq!(t[8192], 1);
        assert_eq!(t[100], 0);
        let owned: Vec<bool> = (0..SLOTS).map(|s| s % 2 == 1).collect();
        let t = cluster_layout(3, &owned);
        let per_shard = |sh: u16| (0..SLOTS).filter(|&s| owned[s] && t[s] == sh).count();
        assert_eq!(
            [per_shard(0), per_shard(1), per_shard(2)],
            [2731, 2731, 2730]
        );
    }
}
