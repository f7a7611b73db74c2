//! The Redis Cluster bus message (Redis 7.0's `clusterMsg`, protocol
//! version 1): a 2256-byte header, then the body of its type. All integers
//! are big-endian. This module knows nothing of the server: it turns bytes
//! into a `Msg` (rejecting anything malformed) and back.

pub const SIG: &[u8; 4] = b"RCmb";
pub const VERSION: u16 = 1;
pub const NAMELEN: usize = 40;
pub const IPLEN: usize = 46;
pub const SLOTS_BYTES: usize = 16384 / 8;
/// Size of the fixed header (offset of the body).
pub const HEADER_LEN: usize = 2256;
/// One gossip entry: name, ping_sent, pong_received, ip, port, cport,
/// flags, pport, unused.
pub const GOSSIP_LEN: usize = NAMELEN + 4 + 4 + IPLEN + 2 + 2 + 2 + 2 + 2;
/// Bigger frames are refused before buffering them (a PUBLISH can be large,
/// but not this large).
pub const MAX_FRAME: usize = 64 << 20;

pub const PING: u16 = 0;
pub const PONG: u16 = 1;
pub const MEET: u16 = 2;
pub const FAIL: u16 = 3;
pub const PUBLISH: u16 = 4;
pub const AUTH_REQUEST: u16 = 5;
pub const AUTH_ACK: u16 = 6;
pub const UPDATE: u16 = 7;
pub const MFSTART: u16 = 8;
pub const MODULE: u16 = 9;
pub const PUBLISHSHARD: u16 = 10;
pub const TYPE_COUNT: usize = 11;

pub const TYPE_NAMES: [&str; TYPE_COUNT] = [
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "module",
    "publishshard",
];

/// Node flags (CLUSTER_NODE_*).
pub mod flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// mflags[0] bits.
pub const MF_PAUSED: u8 = 1;
pub const MF_FORCEACK: u8 = 2;
pub const MF_EXT_DATA: u8 = 4;

const EXT_HOSTNAME: u16 = 0;

pub type Name = [u8; NAMELEN];
pub const NULL_NAME: Name = [0; NAMELEN];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    pub name: Name,
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// PING, PONG, MEET.
    Ping {
        gossip: Vec<Gossip>,
        hostname: Option<String>,
    },
    Fail {
        about: Name,
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Update {
        config_epoch: u64,
        name: Name,
        slots: Box<[u8; SLOTS_BYTES]>,
    },
    /// FAILOVER_AUTH_REQUEST / ACK, MFSTART: the header only.
    Empty,
    /// MODULE and types this node does not know: checked for length only.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub typ: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: Name,
    pub myslots: Box<[u8; SLOTS_BYTES]>,
    pub slaveof: Name,
    /// The announced IP; empty when the sender lets the receiver use the
    /// socket's peer address.
    pub myip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    pub state: u8,
    pub mflags: [u8; 3],
    pub body: Body,
}

impl Msg {
    pub fn new(typ: u16) -> Msg {
        Msg {
            typ,
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender: NULL_NAME,
            myslots: Box::new([0; SLOTS_BYTES]),
            slaveof: NULL_NAME,
            myip: String::new(),
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
            body: Body::Empty,
        }
    }
}

/// Bitmap helpers for `myslots` / UPDATE slots.
pub fn slot_bit(map: &[u8; SLOTS_BYTES], slot: usize) -> bool {
    map[slot / 8] & (1 << (slot % 8)) != 0
}

pub fn set_slot_bit(map: &mut [u8; SLOTS_BYTES], slot: usize) {
    map[slot / 8] |= 1 << (slot % 8);
}

/// With at least 8 bytes buffered: the length of the frame at the head of
/// `buf`, or an error when the signature or length is impossible (the
/// link is then dropped, as Redis does).
pub fn frame_len(buf: &[u8]) -> Option<Result<usize, &'static str>> {
    if buf.len() < 8 {
        return None;
    }
    if &buf[..4] != SIG {
        return Some(Err("bad signature"));
    }
    let len = u32::from_be_bytes(buf[4..8].try_into().unwrap()) as usize;
    if len < HEADER_LEN {
        return Some(Err("frame shorter than the header"));
    }
    if len > MAX_FRAME {
        return Some(Err("frame too long"));
    }
    Some(Ok(len))
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> u16 {
        u16::from_be_bytes(self.b[at..at + 2].try_into().unwrap())
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.b[at..at + 4].try_into().unwrap())
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.b[at..at + 8].try_into().unwrap())
    }
    fn name(&self, at: usize) -> Name {
        self.b[at..at + NAMELEN].try_into().unwrap()
    }
    /// A NUL-terminated string in a fixed field; no NUL in the field or
    /// not valid UTF-8 is refused.
    fn cstr(&self, at: usize, len: usize) -> Result<String, &'static str> {
        let f = &self.b[at..at + len];
        let end = f
            .iter()
            .position(|&c| c == 0)
            .ok_or("unterminated ip field")?;
        std::str::from_utf8(&f[..end])
            .map(str::to_string)
            .map_err(|_| "invalid ip field")
    }
}

/// Decodes one whole frame (as cut by `frame_len`). Lengths are checked
/// as Redis does: the total must equal what the type and counts imply.
pub fn decode(buf: &[u8]) -> Result<Msg, &'static str> {
    if buf.len() < HEADER_LEN {
        return Err("frame shorter than the header");
    }
    if &buf[..4] != SIG {
        return Err("bad signature");
    }
    let r = Reader { b: buf };
    let totlen = r.u32(4) as usize;
    if totlen != buf.len() {
        return Err("length mismatch");
    }
    if r.u16(8) != VERSION {
        return Err("unsupported protocol version");
    }
    let typ = r.u16(12);
    let count = r.u16(14) as usize;
    let mut myslots = Box::new([0u8; SLOTS_BYTES]);
    myslots.copy_from_slice(&buf[80..80 + SLOTS_BYTES]);
    let extensions = r.u16(2214) as usize;
    let mflags = [buf[2253], buf[2254], buf[2255]];
    let body_len = totlen - HEADER_LEN;
    let body = &buf[HEADER_LEN..];
    let body = match typ {
        PING | PONG | MEET => {
            let glen = count
                .checked_mul(GOSSIP_LEN)
                .ok_or("gossip count overflow")?;
            if glen > body_len {
                return Err("gossip section past the frame");
            }
            let mut gossip = Vec::with_capacity(count);
            for i in 0..count {
                let at = HEADER_LEN + i * GOSSIP_LEN;
                gossip.push(Gossip {
                    name: r.name(at),
                    ping_sent: r.u32(at + 40),
                    pong_received: r.u32(at + 44),
                    ip: r.cstr(at + 48, IPLEN)?,
                    port: r.u16(at + 94),
                    cport: r.u16(at + 96),
                    flags: r.u16(at + 98),
                    pport: r.u16(at + 100),
                });
            }
            let mut at = HEADER_LEN + glen;
            let mut hostname = None;
            if mflags[0] & MF_EXT_DATA != 0 {
                for _ in 0..extensions {
                    if totlen - at < 8 {
                        return Err("extension header past the frame");
                    }
                    let len = r.u32(at) as usize;
                    let etype = r.u16(at + 4);
                    if len < 8 || !len.is_multiple_of(8) || len > totlen - at {
                        return Err("bad extension length");
                    }
                    if etype == EXT_HOSTNAME {
                        let h = &buf[at + 8..at + len];
                        let end = h.iter().position(|&c| c == 0).unwrap_or(h.len());
                        let h = std::str::from_utf8(&h[..end]).map_err(|_| "invalid hostname")?;
                        hostname = Some(h.to_string());
                    }
                    at += len;
                }
            }
            if at != totlen {
                return Err("length does not match the gossip and extensions");
            }
            Body::Ping { gossip, hostname }
        }
        FAIL => {
            if body_len != NAMELEN {
                return Err("bad FAIL length");
            }
            Body::Fail {
                about: r.name(HEADER_LEN),
            }
        }
        PUBLISH | PUBLISHSHARD => {
            if body_len < 8 {
                return Err("bad PUBLISH length");
            }
            let cl = r.u32(HEADER_LEN) as usize;
            let ml = r.u32(HEADER_LEN + 4) as usize;
            let want = cl.checked_add(ml).and_then(|n| n.checked_add(8));
            if want != Some(body_len) {
                return Err("bad PUBLISH length");
            }
            Body::Publish {
                channel: body[8..8 + cl].to_vec(),
                message: body[8 + cl..8 + cl + ml].to_vec(),
            }
        }
        AUTH_REQUEST | AUTH_ACK | MFSTART => {
            if body_len != 0 {
                return Err("unexpected body");
            }
            Body::Empty
        }
        UPDATE => {
            if body_len != 8 + NAMELEN + SLOTS_BYTES {
                return Err("bad UPDATE length");
            }
            let mut slots = Box::new([0u8; SLOTS_BYTES]);
            slots.copy_from_slice(&body[8 + NAMELEN..]);
            Body::Update {
                config_epoch: r.u64(HEADER_LEN),
                name: r.name(HEADER_LEN + 8),
                slots,
            }
        }
        _ => Body::Other,
    };
    Ok(Msg {
        typ,
        port: r.u16(10),
        current_epoch: r.u64(16),
        config_epoch: r.u64(24),
        offset: r.u64(32),
        sender: r.name(40),
        myslots,
        slaveof: r.name(2128),
        myip: r.cstr(2168, IPLEN)?,
        pport: r.u16(2246),
        cport: r.u16(2248),
        flags: r.u16(2250),
        state: buf[2252],
        mflags,
        body,
    })
}

fn put_str(out: &mut [u8], s: &str) {
    // Fixed fields keep room for the terminating NUL.
    let n = s.len().min(out.len() - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Encodes a message; `totlen`, `count`, `extensions` and the EXT_DATA
/// flag are computed from the body.
pub fn encode(m: &Msg) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b[..4].copy_from_slice(SIG);
    b[8..10].copy_from_slice(&VERSION.to_be_bytes());
    b[10..12].copy_from_slice(&m.port.to_be_bytes());
    b[12..14].copy_from_slice(&m.typ.to_be_bytes());
    b[16..24].copy_from_slice(&m.current_epoch.to_be_bytes());
    b[24..32].copy_from_slice(&m.config_epoch.to_be_bytes());
    b[32..40].copy_from_slice(&m.offset.to_be_bytes());
    b[40..80].copy_from_slice(&m.sender);
    b[80..80 + SLOTS_BYTES].copy_from_slice(&m.myslots[..]);
    b[2128..2168].copy_from_slice(&m.slaveof);
    put_str(&mut b[2168..2168 + IPLEN], &m.myip);
    b[2246..2248].copy_from_slice(&m.pport.to_be_bytes());
    b[2248..2250].copy_from_slice(&m.cport.to_be_bytes());
    b[2250..2252].copy_from_slice(&m.flags.to_be_bytes());
    b[2252] = m.state;
    b[2253..2256].copy_from_slice(&m.mflags);
    let mut count = 0u16;
    let mut extensions = 0u16;
    match &m.body {
        Body::Ping { gossip, hostname } => {
            count = gossip.len() as u16;
            for g in gossip {
                let at = b.len();
                b.resize(at + GOSSIP_LEN, 0);
                let e = &mut b[at..];
                e[..40].copy_from_slice(&g.name);
                e[40..44].copy_from_slice(&g.ping_sent.to_be_bytes());
                e[44..48].copy_from_slice(&g.pong_received.to_be_bytes());
                put_str(&mut e[48..48 + IPLEN], &g.ip);
                e[94..96].copy_from_slice(&g.port.to_be_bytes());
                e[96..98].copy_from_slice(&g.cport.to_be_bytes());
                e[98..100].copy_from_slice(&g.flags.to_be_bytes());
                e[100..102].copy_from_slice(&g.pport.to_be_bytes());
            }
            if let Some(h) = hostname.as_ref().filter(|h| !h.is_empty()) {
                // Header (8) + the name + NUL, padded to 8 bytes.
                let len = (8 + h.len() + 1).div_ceil(8) * 8;
                let at = b.len();
                b.resize(at + len, 0);
                b[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
                b[at + 4..at + 6].copy_from_slice(&EXT_HOSTNAME.to_be_bytes());
                b[at + 8..at + 8 + h.len()].copy_from_slice(h.as_bytes());
                extensions = 1;
                b[2253] |= MF_EXT_DATA;
            }
        }
        Body::Fail { about } => b.extend_from_slice(about),
        Body::Publish { channel, message } => {
            b.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            b.extend_from_slice(&(message.len() as u32).to_be_bytes());
            b.extend_from_slice(channel);
            b.extend_from_slice(message);
        }
        Body::Update {
            config_epoch,
            name,
            slots,
        } => {
            b.extend_from_slice(&config_epoch.to_be_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&slots[..]);
        }
        Body::Empty | Body::Other => {}
    }
    b[14..16].copy_from_slice(&count.to_be_bytes());
    b[2214..2216].copy_from_slice(&extensions.to_be_bytes());
    let len = b.len() as u32;
    b[4..8].copy_from_slice(&len.to_be_bytes());
    b
}

/// One message of each body kind, as a node would send them: the codec's
/// round-trip test and the fuzz seeds of the cluster bus both start here.
pub fn samples() -> Vec<Msg> {
    let mut ping = Msg::new(PING);
    ping.port = 7000;
    ping.cport = 17000;
    ping.current_epoch = 5;
    ping.config_epoch = 3;
    ping.sender = [b'a'; 40];
    set_slot_bit(&mut ping.myslots, 16383);
    ping.body = Body::Ping {
        gossip: vec![Gossip {
            name: [b'b'; 40],
            ping_sent: 1,
            pong_received: 2,
            ip: "127.0.0.1".into(),
            port: 7001,
            cport: 17001,
            flags: flags::MASTER,
            pport: 0,
        }],
        hostname: Some("host-1".into()),
    };
    let mut fail = Msg::new(FAIL);
    fail.body = Body::Fail { about: [b'c'; 40] };
    let mut publish = Msg::new(PUBLISH);
    publish.body = Body::Publish {
        channel: b"ch".to_vec(),
        message: b"hello world".to_vec(),
    };
    let mut update = Msg::new(UPDATE);
    update.body = Body::Update {
        config_epoch: 9,
        name: [b'c'; 40],
        slots: Box::new([0xff; SLOTS_BYTES]),
    };
    vec![ping, fail, publish, update, Msg::new(AUTH_REQUEST)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_lengths() {
        for m in samples() {
            let mut d = decode(&encode(&m)).unwrap();
            d.mflags[0] &= !MF_EXT_DATA;
            assert_eq!(d, m);
        }
        let m = samples().remove(0);
        let b = encode(&m);
        assert_eq!(b.len(), HEADER_LEN + GOSSIP_LEN + 16);
        assert_eq!(frame_len(&b), Some(Ok(b.len())));
        let mut d = decode(&b).unwrap();
        assert!(slot_bit(&d.myslots, 16383));
        d.mflags[0] &= !MF_EXT_DATA;
        assert_eq!(d, m);
        // A count that points past the frame, a truncated frame.
        let mut bad = b.clone();
        bad[14..16].copy_from_slice(&100u16.to_be_bytes());
        assert!(decode(&bad).is_err());
        assert!(decode(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[0] = b'X';
        assert!(frame_len(&bad).unwrap().is_err());
    }
}
