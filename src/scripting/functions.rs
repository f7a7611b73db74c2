//! Redis 7 Functions: the process-wide set of libraries (FUNCTION LOAD,
//! DELETE, FLUSH, RESTORE change it; every shard's engine reads it).
//!
//! A library is kept as its source: each engine compiles the libraries into
//! its own Lua state the first time it calls a function after a change (the
//! set carries a generation), so loading on one shard makes the functions
//! callable on every shard.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;

use super::{FLAG_NAMES, ScriptFlags};

/// One function of a library, as registered by its load.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub desc: Option<Bytes>,
    /// Declared flags (never EVAL_COMPAT).
    pub flags: ScriptFlags,
}

/// A loaded library: its whole code (header included) and its functions.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub engine: &'static str,
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// The libraries at one moment (replaced as a whole on every change).
#[derive(Clone, Debug, Default)]
pub struct LibrarySet {
    pub libs: BTreeMap<String, Arc<Library>>,
    /// function name, lowercase (stock's function dict ignores case) ->
    /// library name.
    pub funcs: HashMap<String, String>,
}

impl LibrarySet {
    /// The function called `name`, whatever its case.
    pub fn function(&self, name: &str) -> Option<(&Arc<Library>, &FunctionInfo)> {
        let lib = self.libs.get(self.funcs.get(&name.to_ascii_lowercase())?)?;
        let f = lib
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        Some((lib, f))
    }

    pub fn function_count(&self) -> usize {
        self.funcs.len()
    }

    /// FUNCTION DELETE: false when there is no such library.
    pub fn remove(&mut self, name: &str) -> bool {
        self.unlink(name).is_some()
    }

    fn unlink(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libs.remove(name)?;
        for f in &lib.functions {
            self.funcs.remove(&f.name.to_ascii_lowercase());
        }
        Some(lib)
    }

    fn link(&mut self, lib: Arc<Library>) {
        for f in &lib.functions {
            self.funcs
                .insert(f.name.to_ascii_lowercase(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    /// Adds `lib`, replacing a library of the same name when `replace`.
    /// Errors as Redis's functionsCreateWithLibraryCtx.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        let old = match self.libs.contains_key(&lib.name) {
            true if !replace => return Err(format!("Library '{}' already exists", lib.name)),
            true => self.unlink(&lib.name),
            false => None,
        };
        if let Some(f) = lib
            .functions
            .iter()
            .find(|f| self.funcs.contains_key(&f.name.to_ascii_lowercase()))
        {
            let e = format!("Function {} already exists", f.name);
            if let Some(old) = old {
                self.link(old);
            }
            return Err(e);
        }
        self.link(Arc::new(lib));
        Ok(())
    }

    /// Redis's libraryJoin (FUNCTION RESTORE APPEND/REPLACE): all or nothing.
    pub fn join(&mut self, other: LibrarySet, replace: bool) -> Result<(), String> {
        let mut next = self.clone();
        for name in other.libs.keys() {
            if next.libs.contains_key(name) {
                if !replace {
                    return Err(format!("Library {name} already exists"));
                }
                next.unlink(name);
            }
        }
        for l in other.libs.values() {
            if let Some(f) = l
                .functions
                .iter()
                .find(|f| next.funcs.contains_key(&f.name.to_ascii_lowercase()))
            {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        for l in other.libs.into_values() {
            next.link(l);
        }
        *self = next;
        Ok(())
    }
}

struct Store {
    set: RwLock<Arc<LibrarySet>>,
    generation: AtomicU64,
}

static STORE: LazyLock<Store> = LazyLock::new(|| Store {
    set: RwLock::new(Arc::new(LibrarySet::default())),
    generation: AtomicU64::new(1),
});

/// The current libraries.
pub fn current() -> Arc<LibrarySet> {
    STORE.set.read().unwrap().clone()
}

/// Bumped on every change; engines rebuild their function state when it moved.
pub fn generation() -> u64 {
    STORE.generation.load(Ordering::Acquire)
}

/// Applies `f` to a copy of the current set and installs it when `f` succeeds.
pub fn update<R>(f: impl FnOnce(&mut LibrarySet) -> Result<R, String>) -> Result<R, String> {
    let mut guard = STORE.set.write().unwrap();
    let mut next = (**guard).clone();
    let r = f(&mut next)?;
    *guard = Arc::new(next);
    STORE.generation.fetch_add(1, Ordering::AcqRel);
    Ok(r)
}

/// Every library's code, for the RDB (FUNCTION2 records) and FUNCTION DUMP.
pub fn codes() -> Vec<Bytes> {
    current().libs.values().map(|l| l.code.clone()).collect()
}

/// Memory of the libraries (INFO used_memory_functions approximation).
pub fn memory() -> usize {
    current()
        .libs
        .values()
        .map(|l| l.code.len() + l.functions.len() * 64)
        .sum()
}

pub const NAME_ERR: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Redis's functionsVerifyName.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The parsed `#!<engine> name=<lib>` header.
pub struct LibMeta {
    pub engine: Vec<u8>,
    pub name: Vec<u8>,
    /// Offset of the code the engine compiles (the header's newline on).
    pub body: usize,
}

/// Redis's functionExtractLibMetaData. Errors are the text after `ERR `.
pub fn parse_meta(code: &[u8]) -> Result<LibMeta, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    // C string semantics: the search for the newline stops at a NUL.
    let nul = code.iter().position(|&b| b == 0).unwrap_or(code.len());
    let Some(end) = code[..nul].iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match super::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = parts[0].get(2..).unwrap_or(b"").to_vec();
    let mut name: Option<Vec<u8>> = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_vec());
            continue;
        }
        return Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(until_nul(p))
        ));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok(LibMeta {
        engine,
        name,
        body: end,
    })
}

/// What a `%s` of a C string shows.
fn until_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// The flags of a function as FUNCTION LIST names them (stock's order).
pub fn flag_names(flags: ScriptFlags) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .iter()
        .filter(move |(_, bit)| flags.has(*bit))
        .map(|(n, _)| *n)
}

/// Looks up a flag name (case-insensitive, as register_function).
pub fn flag_bit(name: &[u8]) -> Option<u8> {
    FLAG_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(_, b)| *b)
}
