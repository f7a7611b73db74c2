//! The Redis 7 multi-part AOF manifest: one line per file,
//! `file <name> seq <n> type b|h|i`, base first, then history, then the
//! incremental files in order.

/// Longest manifest line Redis reads (MANIFEST_MAX_LINE).
const MAX_LINE: usize = 1024;

/// atoll: leading digits with a sign, 0 when none.
fn atoll(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, d) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
    let v = d[..end].parse::<i64>().unwrap_or(0);
    if neg { -v } else { v }
}

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
    /// Parses as Redis 7.0 does (aofLoadManifestFromFile); an error is
    /// (line number, the trimmed line, stock's message).
    pub fn parse(text: &[u8]) -> Result<Manifest, (usize, String, &'static str)> {
        let mut m = Manifest::default();
        if text.is_empty() {
            return Err((0, String::new(), "Found an empty AOF manifest"));
        }
        let mut rest = text;
        let mut linenum = 0;
        while !rest.is_empty() {
            linenum += 1;
            let (raw, next, complete) = match rest.iter().position(|&c| c == b'\n') {
                Some(i) if i <= MAX_LINE => (&rest[..i], &rest[i + 1..], true),
                _ => (
                    &rest[..rest.len().min(MAX_LINE)],
                    &rest[rest.len()..],
                    false,
                ),
            };
            rest = next;
            if raw.first() == Some(&b'#') {
                continue;
            }
            let line = String::from_utf8_lossy(raw)
                .trim_matches([' ', '\t', '\r', '\n'])
                .to_string();
            let err = |e: &'static str| Err((linenum, line.clone(), e));
            if !complete {
                return err("The AOF manifest file contains too long line");
            }
            if line.is_empty() {
                return err("Invalid AOF manifest file format");
            }
            let Some(words) = crate::protocol::parser_split_args(line.as_bytes()) else {
                return err("Invalid AOF manifest file format");
            };
            if words.len() < 6 || words.len() % 2 != 0 {
                return err("Invalid AOF manifest file format");
            }
            let (mut name, mut seq, mut kind) = (None, 0i64, 0u8);
            for kv in words.chunks(2) {
                let v = String::from_utf8_lossy(&kv[1]).to_string();
                if kv[0].eq_ignore_ascii_case(b"file") {
                    if v.contains('/') {
                        return err("File can't be a path, just a filename");
                    }
                    name = Some(v);
                } else if kv[0].eq_ignore_ascii_case(b"seq") {
                    seq = atoll(&v);
                } else if kv[0].eq_ignore_ascii_case(b"type") {
                    kind = v.bytes().next().unwrap_or(0);
                }
            }
            let Some(name) = name.filter(|_| seq != 0 && kind != 0) else {
                return err("Invalid AOF manifest file format");
            };
            let f = FileInfo { name, seq, kind };
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return err("Found duplicate base file information");
                    }
                    m.base_seq = seq;
                    m.base = Some(f);
                }
                b'h' => m.history.push(f),
                b'i' => {
                    if seq <= m.incr_seq {
                        return err("Found a non-monotonic sequence number");
                    }
                    m.incr_seq = seq;
                    m.incrs.push(f);
                }
                _ => return err("Unknown AOF file type"),
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
        assert!(Manifest::parse(b"").is_err());
        assert!(Manifest::parse(b"file a seq 1 type b\n\n").is_err());
        assert!(Manifest::parse(b"# comment\nfile a seq 1 type b\n").is_ok());
        assert!(Manifest::parse(b"file a seq 1 type x\n").is_err());
        assert!(Manifest::parse(b"file ../a seq 1 type b\n").is_err());
    }
}
