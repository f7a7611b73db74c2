//! The Redis 7 multi-part AOF manifest: one line per file,
//! `file <name> seq <n> type b|h|i`, base first, then history, then the
//! incremental files in order.

#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    pub name: String,
    pub seq: i64,
    /// b (base), h (history), i (incr).
    pub kind: u8,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    pub incrs: Vec<FileInfo>,
    pub history: Vec<FileInfo>,
    /// Highest sequence numbers seen (the next file takes one more).
    pub base_seq: i64,
    pub incr_seq: i64,
}

impl Manifest {
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                |why: &str| format!("Invalid AOF manifest file format at line {}: {why}", i + 1);
            let words = crate::protocol::parser_split_args(line.as_bytes())
                .ok_or_else(|| bad("unbalanced quotes"))?;
            if words.len() % 2 != 0 {
                return Err(bad("Invalid AOF manifest file format"));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                let v = String::from_utf8_lossy(&kv[1]).to_string();
                match kv[0].as_slice() {
                    b"file" => name = Some(v),
                    b"seq" => seq = v.parse::<i64>().ok(),
                    b"type" => kind = v.bytes().next().filter(|_| v.len() == 1),
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(bad("Mismatched manifest key"));
            };
            if name.contains('/') {
                return Err(bad("file name is a path"));
            }
            let f = FileInfo { name, seq, kind };
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err(bad("Found duplicate base file information"));
                    }
                    m.base_seq = seq;
                    m.base = Some(f);
                }
                b'h' => m.history.push(f),
                b'i' => {
                    if seq <= m.incr_seq {
                        return Err(bad("Found a non-monotonic sequence number"));
                    }
                    m.incr_seq = seq;
                    m.incrs.push(f);
                }
                _ => return Err(bad("Unknown AOF file type")),
            }
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, f: &FileInfo| {
            let name = if f
                .name
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'')
            {
                f.name.clone()
            } else {
                crate::util::repr(f.name.as_bytes())
            };
            s.push_str(&format!(
                "file {name} seq {} type {}\n",
                f.seq, f.kind as char
            ));
        };
        if let Some(b) = &self.base {
            line(&mut s, b);
        }
        for f in &self.history {
            line(&mut s, f);
        }
        for f in &self.incrs {
            line(&mut s, f);
        }
        s
    }

    /// A new base named after `prefix` (the old one becomes history).
    pub fn new_base(&mut self, prefix: &str, rdb: bool) -> FileInfo {
        self.base_seq += 1;
        let ext = if rdb { "rdb" } else { "aof" };
        let f = FileInfo {
            name: format!("{prefix}.{}.base.{ext}", self.base_seq),
            seq: self.base_seq,
            kind: b'b',
        };
        if let Some(mut old) = self.base.replace(f.clone()) {
            old.kind = b'h';
            self.history.push(old);
        }
        f
    }

    /// A new incremental file appended to the list.
    pub fn new_incr(&mut self, prefix: &str) -> FileInfo {
        self.incr_seq += 1;
        let f = FileInfo {
            name: format!("{prefix}.{}.incr.aof", self.incr_seq),
            seq: self.incr_seq,
            kind: b'i',
        };
        self.incrs.push(f.clone());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let text = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.render().as_bytes(), text);
        assert!(Manifest::parse(b"file a seq 1 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse(b"file a seq 1\n").is_err());
        assert!(Manifest::parse(b"file a seq 1 type x\n").is_err());
        assert!(Manifest::parse(b"file ../a seq 1 type b\n").is_err());
    }
}
