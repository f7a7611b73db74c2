//! The replication backlog: the tail of the stream, in blocks, shared by
//! PSYNC and by every replica's sender (Redis 7's shared replication
//! buffer). Offsets are stream byte positions; the first byte is offset 1.

use std::collections::VecDeque;

const MIN_BLOCK: usize = 16 * 1024;

pub struct Backlog {
    blocks: VecDeque<Vec<u8>>,
    /// Offset of the first byte of `blocks[0]`.
    first: i64,
    histlen: usize,
    /// `repl-backlog-size`: history kept for PSYNC.
    pub size: usize,
    block_cap: usize,
}

impl Backlog {
    /// An empty backlog whose next byte has offset `offset + 1`.
    pub fn new(size: usize, offset: i64) -> Backlog {
        let size = size.max(MIN_BLOCK);
        Backlog {
            blocks: VecDeque::new(),
            first: offset + 1,
            histlen: 0,
            size,
            block_cap: (size / 16).max(MIN_BLOCK),
        }
    }

    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// Offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> i64 {
        self.first
    }

    /// Offset of the last byte held.
    pub fn last_byte(&self) -> i64 {
        self.first + self.histlen as i64 - 1
    }

    pub fn append(&mut self, mut data: &[u8]) {
        self.histlen += data.len();
        while !data.is_empty() {
            let cap = self.block_cap;
            let need_new = self.blocks.back().is_none_or(|b| b.len() >= cap);
            if need_new {
                self.blocks.push_back(Vec::with_capacity(cap));
            }
            let b = self.blocks.back_mut().unwrap();
            let n = (cap - b.len()).min(data.len());
            b.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// Drops whole blocks from the head while more than `size` bytes would
    /// remain and no reader still needs them (`keep_from`: the lowest
    /// offset a replica has yet to receive).
    pub fn trim(&mut self, keep_from: i64) {
        while self.blocks.len() > 1 {
            let l = self.blocks[0].len();
            let end = self.first + l as i64; // offset after the block
            if self.histlen - l < self.size || end > keep_from {
                break;
            }
            self.blocks.pop_front();
            self.first = end;
            self.histlen -= l;
        }
    }

    /// Appends to `out` up to `max` bytes starting at offset `from`
    /// (which must be within the backlog, or just past its end).
    pub fn copy_from(&self, from: i64, max: usize, out: &mut Vec<u8>) {
        debug_assert!(from >= self.first);
        let mut skip = (from - self.first) as usize;
        let mut left = max;
        for b in &self.blocks {
            if left == 0 {
                break;
            }
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let n = (b.len() - skip).min(left);
            out.extend_from_slice(&b[skip..skip + n]);
            left -= n;
            skip = 0;
        }
    }

    /// Memory held (mem_replication_backlog).
    pub fn memory(&self) -> usize {
        self.blocks.iter().map(|b| b.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_copy_trim() {
        let mut b = Backlog::new(16 * 1024, 100);
        assert_eq!(b.first_byte(), 101);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        b.append(&data);
        assert_eq!(b.last_byte(), 100 + 100_000);
        let mut out = Vec::new();
        b.copy_from(101 + 5000, 30_000, &mut out);
        assert_eq!(out, &data[5000..35000]);
        // A reader at 101+20000 keeps the blocks it still needs.
        b.trim(101 + 20_000);
        assert!(b.first_byte() <= 101 + 20_000);
        b.trim(i64::MAX);
        assert!(b.histlen() >= 16 * 1024);
        let from = b.first_byte();
        out.clear();
        b.copy_from(from, usize::MAX, &mut out);
        assert_eq!(out, &data[(from - 101) as usize..]);
    }
}
