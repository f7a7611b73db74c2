//! Key -> Redis Cluster slot -> shard.

pub const SLOTS: usize = 16384;

/// CRC16/XMODEM, the checksum Redis Cluster uses for slots.
pub fn crc16(data: &[u8]) -> u16 {
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

/// Slots are split into contiguous ranges, one per shard.
pub fn slot_shard(slot: usize, nshards: usize) -> usize {
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
}
