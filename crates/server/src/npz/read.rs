//! The reader half of `tensors.npz`, for files that come from outside: a
//! session folder unpacked from someone else is untrusted input. The zip's
//! central directory and every array's `.npy` header are parsed here, and
//! each claim they make (entry count, offsets, sizes, dtype, shape) is
//! checked against the bytes the file holds before anything is allocated:
//! no allocation depends on a number the file's size does not back.
//!
//! Read: what `np.savez` and this server write — a zip (zip64 or not) of at
//! most [`MAX_ENTRIES`] uncompressed `.npy` entries, npy format 1.0 to 3.0,
//! numeric, bool and string dtypes; the session arrays in their layout
//! ([`Npz::session_states`]). Anything else is refused with the reason.

use std::io::{Read, Seek, SeekFrom};

/// A session's file has 4 or 5 arrays; a zip claiming more than this is not
/// one, and its directory is refused before it is read.
pub const MAX_ENTRIES: u64 = 64;
/// An array name longer than this is not one of a session's.
const MAX_NAME: usize = 255;
/// The central directory of [`MAX_ENTRIES`] entries is a few KiB; this
/// leaves room for large extra fields and comments.
const MAX_DIRECTORY: u64 = 1 << 20;
/// numpy writes headers of a few hundred bytes (and by default refuses to
/// read headers over 10000 bytes).
const MAX_HEADER: u64 = 1 << 16;
/// More dimensions than numpy allows (64) is not an npy header.
const MAX_DIMS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is not a readable npz of a session: why, in words.
    #[error("{0}")]
    Invalid(String),
    /// The file could not be read (a fault of the disk, not of the file).
    #[error("reading failed: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            invalid("the file ends before the data its zip directory points to (truncated?)")
        } else {
            ReadError::Io(e)
        }
    }
}

fn invalid(msg: impl Into<String>) -> ReadError {
    ReadError::Invalid(msg.into())
}

type Result<T> = std::result::Result<T, ReadError>;

/// An element type as an npy header's `descr` names it: byte order, kind
/// and size (`<f4`, `|b1`, `<U12`: 12 characters of 4 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtype {
    pub order: char,
    pub kind: char,
    pub size: u64,
}

impl Dtype {
    fn parse(descr: &str) -> std::result::Result<Self, String> {
        let mut chars = descr.chars().peekable();
        let order = match chars.peek() {
            Some(&c @ ('<' | '>' | '|' | '=')) => {
                chars.next();
                c
            }
            _ => '|',
        };
        let kind = chars.next().ok_or("an empty dtype")?;
        if kind == 'O' {
            // numpy writes '|O', without a size.
            return Err(
                "object arrays (pickled Python objects) are not read; save plain arrays".into(),
            );
        }
        let digits: String = chars.collect();
        let size: u64 = match (digits.len(), digits.parse()) {
            (1..=9, Ok(n)) if digits.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("dtype {descr:?} is not read")),
        };
        let known = match kind {
            'b' => size == 1,
            'i' | 'u' => matches!(size, 1 | 2 | 4 | 8),
            'f' => matches!(size, 2 | 4 | 8 | 16),
            'c' => matches!(size, 8 | 16 | 32),
            // Strings of `size` characters; none of zero width, where any
            // number of elements would fit in no bytes.
            'U' | 'S' => size >= 1,
            _ => false,
        };
        if !known {
            return Err(format!("dtype {descr:?} is not read"));
        }
        Ok(Dtype { order, kind, size })
    }

    /// Bytes per element.
    fn item_bytes(&self) -> u64 {
        if self.kind == 'U' {
            4 * self.size
        } else {
            self.size
        }
    }

    fn is_f32_le(&self) -> bool {
        self.kind == 'f' && self.size == 4 && self.order == '<'
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}{}{}'", self.order, self.kind, self.size)
    }
}

/// One array of the file, its header checked against its bytes: the data
/// is exactly `shape.product() * dtype size` bytes at `data_start`.
#[derive(Debug, Clone)]
pub struct Array {
    /// The entry's name without `.npy`.
    pub name: String,
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    data_start: u64,
    data_len: u64,
}

/// A zip entry: where its local header starts, and its (stored) bytes.
struct Entry {
    name: String,
    header_start: u64,
    data_start: u64,
    size: u64,
}

/// An npz opened for reading: its directory and every array's header read
/// and checked.
#[derive(Debug)]
pub struct Npz<R> {
    reader: R,
    arrays: Vec<Array>,
}

impl<R: Read + Seek> Npz<R> {
    /// Read the directory and the headers of the `len`-byte file `reader`.
    pub fn open(mut reader: R, len: u64) -> Result<Self> {
        let entries = directory(&mut reader, len)?;
        let arrays = entries
            .into_iter()
            .map(|e| array_header(&mut reader, e))
            .collect::<Result<Vec<_>>>()?;
        Ok(Npz { reader, arrays })
    }

    pub fn arrays(&self) -> &[Array] {
        &self.arrays
    }

    /// The array stored as `<name>.npy`.
    pub fn get(&self, name: &str) -> Option<&Array> {
        self.arrays.iter().find(|a| a.name == name)
    }

    /// A little-endian float32 array's values, in C order.
    pub fn read_f32(&mut self, a: &Array) -> Result<Vec<f32>> {
        if !a.dtype.is_f32_le() || a.fortran_order {
            return Err(invalid(format!(
                "{} is {}{}, not little-endian float32 ('<f4') in C order",
                a.name,
                a.dtype,
                if a.fortran_order {
                    " in Fortran order"
                } else {
                    ""
                }
            )));
        }
        let n = usize::try_from(a.data_len / 4)
            .map_err(|_| invalid(format!("{} is too large for this machine", a.name)))?;
        // Backed by the file: the entry's bytes lie inside it (checked when
        // the directory was read), and there are exactly 4 per value.
        let mut out = Vec::with_capacity(n);
        self.reader.seek(SeekFrom::Start(a.data_start))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = a.data_len;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            self.reader.read_exact(&mut buf[..k])?;
            out.extend(
                buf[..k]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            left -= k as u64;
        }
        Ok(out)
    }

    /// A 1-d numpy unicode array (`<U{n}`) as strings, trailing NULs dropped.
    pub fn read_unicode(&mut self, a: &Array) -> Result<Vec<String>> {
        let le = matches!(a.dtype.order, '<' | '|');
        if a.dtype.kind != 'U' || !le || a.shape.len() != 1 {
            return Err(invalid(format!(
                "{} has shape {:?} of {}, not [rows] of text ('<U')",
                a.name, a.shape, a.dtype
            )));
        }
        let len = usize::try_from(a.data_len)
            .map_err(|_| invalid(format!("{} is too large for this machine", a.name)))?;
        let mut bytes = vec![0u8; len];
        self.reader.seek(SeekFrom::Start(a.data_start))?;
        self.reader.read_exact(&mut bytes)?;
        let width = 4 * a.dtype.size as usize;
        bytes
            .chunks_exact(width)
            .map(|item| {
                let s: Option<String> = item
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .map(char::from_u32)
                    .collect();
                s.map(|s| s.trim_end_matches('\0').to_owned())
                    .ok_or_else(|| invalid(format!("{} holds an invalid character", a.name)))
            })
            .collect()
    }
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// `n` bytes at `at`; callers bound `n`.
fn read_at<R: Read + Seek>(r: &mut R, at: u64, n: usize) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    Ok(b)
}

const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: u64 = 30;

/// The entries of a zip of `len` bytes, from its end record and central
/// directory; every offset and size checked to lie inside the file.
fn directory<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<Entry>> {
    if len < EOCD_LEN as u64 {
        return Err(invalid(format!("not a zip file ({len} bytes)")));
    }
    // The end record is the last 22 bytes before a comment of at most 64 KiB.
    let tail_len = len.min(EOCD_LEN as u64 + 0xFFFF) as usize;
    let tail_at = len - tail_len as u64;
    let tail = read_at(r, tail_at, tail_len)?;
    let pos = (0..=tail_len - EOCD_LEN)
        .rev()
        .find(|&i| {
            tail[i..i + 4] == *b"PK\x05\x06"
                && i + EOCD_LEN + u16le(&tail, i + 20) as usize == tail_len
        })
        .ok_or_else(|| invalid("not a zip file (no end of central directory record)"))?;
    let eocd_at = tail_at + pos as u64;
    let e = &tail[pos..];
    let (mut disk, mut cd_disk) = (u32::from(u16le(e, 4)), u32::from(u16le(e, 6)));
    let (mut n_here, mut n) = (u64::from(u16le(e, 8)), u64::from(u16le(e, 10)));
    let (mut cd_size, mut cd_at) = (u64::from(u32le(e, 12)), u64::from(u32le(e, 16)));
    // The central directory lies before this.
    let mut end = eocd_at;
    if n == 0xFFFF || n_here == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_at == 0xFFFF_FFFF {
        // zip64: a locator just before the end record points at the zip64 end record.
        let loc_at = eocd_at
            .checked_sub(20)
            .ok_or_else(|| invalid("zip64 end of central directory locator missing"))?;
        let loc = read_at(r, loc_at, 20)?;
        if loc[..4] != *b"PK\x06\x07" {
            return Err(invalid("zip64 end of central directory locator missing"));
        }
        let rec_at = u64le(&loc, 8);
        if rec_at.checked_add(56).is_none_or(|x| x > loc_at) {
            return Err(invalid(
                "the zip64 end of central directory record lies outside the file",
            ));
        }
        let rec = read_at(r, rec_at, 56)?;
        if rec[..4] != *b"PK\x06\x06" {
            return Err(invalid("zip64 end of central directory record missing"));
        }
        (disk, cd_disk) = (u32le(&rec, 16), u32le(&rec, 20));
        (n_here, n) = (u64le(&rec, 24), u64le(&rec, 32));
        (cd_size, cd_at) = (u64le(&rec, 40), u64le(&rec, 48));
        end = rec_at;
    }
    if disk != 0 || cd_disk != 0 || n_here != n {
        return Err(invalid("a zip split over several disks is not read"));
    }
    if n > MAX_ENTRIES {
        return Err(invalid(format!(
            "the zip claims {n} entries; a session's tensors.npz holds at most {MAX_ENTRIES} arrays"
        )));
    }
    if cd_size > MAX_DIRECTORY || cd_at.checked_add(cd_size).is_none_or(|x| x > end) {
        return Err(invalid(format!(
            "the zip's central directory ({cd_size} bytes at {cd_at}) does not fit the file"
        )));
    }
    let cd = read_at(r, cd_at, cd_size as usize)?;
    let short = || invalid("the zip's central directory is cut short");
    let mut entries: Vec<Entry> = Vec::with_capacity(n as usize);
    let mut p = 0usize;
    for _ in 0..n {
        let fixed = cd.get(p..p + CENTRAL_LEN).ok_or_else(short)?;
        if fixed[..4] != *b"PK\x01\x02" {
            return Err(invalid("a zip central directory entry is damaged"));
        }
        let flags = u16le(fixed, 8);
        let method = u16le(fixed, 10);
        let mut csize = u64::from(u32le(fixed, 20));
        let mut size = u64::from(u32le(fixed, 24));
        let name_len = usize::from(u16le(fixed, 28));
        let extra_len = usize::from(u16le(fixed, 30));
        let comment_len = usize::from(u16le(fixed, 32));
        let mut disk_start = u32::from(u16le(fixed, 34));
        let mut offset = u64::from(u32le(fixed, 42));
        let name_at = p + CENTRAL_LEN;
        let name_raw = cd.get(name_at..name_at + name_len).ok_or_else(short)?;
        let mut extra = cd
            .get(name_at + name_len..name_at + name_len + extra_len)
            .ok_or_else(short)?;
        p = name_at + name_len + extra_len + comment_len;
        if p > cd.len() {
            return Err(short());
        }
        let name = std::str::from_utf8(name_raw)
            .ok()
            .filter(|s| s.len() <= MAX_NAME)
            .ok_or_else(|| invalid("an entry's name is not a short UTF-8 name"))?
            .to_owned();
        // The zip64 extra field holds, in this order, the values whose
        // 32-bit fields are saturated.
        while extra.len() >= 4 {
            let (id, n) = (u16le(extra, 0), usize::from(u16le(extra, 2)));
            let body = extra
                .get(4..4 + n)
                .ok_or_else(|| invalid(format!("{name}: its extra field is cut short")))?;
            if id == 1 {
                let mut q = 0;
                let mut take = |field: &mut u64| -> Result<()> {
                    if *field == 0xFFFF_FFFF {
                        *field = body
                            .get(q..q + 8)
                            .map(|b| u64le(b, 0))
                            .ok_or_else(|| invalid(format!("{name}: zip64 field cut short")))?;
                        q += 8;
                    }
                    Ok(())
                };
                take(&mut size)?;
                take(&mut csize)?;
                take(&mut offset)?;
                if disk_start == 0xFFFF {
                    disk_start = body
                        .get(q..q + 4)
                        .map(|b| u32le(b, 0))
                        .ok_or_else(|| invalid(format!("{name}: zip64 field cut short")))?;
                }
            }
            extra = &extra[4 + n..];
        }
        if flags & 1 != 0 {
            return Err(invalid(format!("{name} is encrypted")));
        }
        if method != 0 {
            return Err(invalid(format!(
                "{name} is compressed (zip method {method}); only uncompressed arrays are read, \
                 as np.savez writes them (not np.savez_compressed)"
            )));
        }
        if csize != size || disk_start != 0 {
            return Err(invalid(format!("{name}: its zip sizes disagree")));
        }
        if !name.ends_with(".npy") || name.len() == 4 {
            return Err(invalid(format!(
                "{name:?} is not an array: an npz holds only .npy entries"
            )));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(invalid(format!("{name} appears twice")));
        }
        // The local header, then the data, all before the central directory.
        if offset.checked_add(LOCAL_LEN).is_none_or(|x| x > cd_at) {
            return Err(invalid(format!(
                "{name}: its local header lies outside the file"
            )));
        }
        let local = read_at(r, offset, LOCAL_LEN as usize)?;
        let (local_name_len, local_extra_len) = (u16le(&local, 26), u16le(&local, 28));
        if local[..4] != *b"PK\x03\x04" || usize::from(local_name_len) != name_len {
            return Err(invalid(format!("{name}: its local header is damaged")));
        }
        if read_at(r, offset + LOCAL_LEN, name_len)? != name_raw {
            return Err(invalid(format!(
                "{name}: its local header names another file"
            )));
        }
        let data_start =
            offset + LOCAL_LEN + u64::from(local_name_len) + u64::from(local_extra_len);
        if data_start.checked_add(size).is_none_or(|x| x > cd_at) {
            return Err(invalid(format!(
                "{name} claims {size} bytes, more than the file holds"
            )));
        }
        entries.push(Entry {
            name,
            header_start: offset,
            data_start,
            size,
        });
    }
    // No two entries share bytes.
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|e| e.header_start);
    if let Some(w) = order
        .windows(2)
        .find(|w| w[0].data_start + w[0].size > w[1].header_start)
    {
        return Err(invalid(format!("{} and {} overlap", w[0].name, w[1].name)));
    }
    Ok(entries)
}

/// An entry's npy header, checked against the entry's size.
fn array_header<R: Read + Seek>(r: &mut R, e: Entry) -> Result<Array> {
    let bad = |m: String| invalid(format!("{}: {m}", e.name));
    let pre = read_at(r, e.data_start, e.size.min(12) as usize)?;
    if pre.len() < 10 || pre[..6] != *b"\x93NUMPY" {
        return Err(bad("not an npy array (no \\x93NUMPY magic)".into()));
    }
    let (prefix, header_len) = match (pre[6], pre[7]) {
        (1, 0) => (10u64, u64::from(u16le(&pre, 8))),
        (2 | 3, 0) if pre.len() == 12 => (12, u64::from(u32le(&pre, 8))),
        (major, minor) => {
            return Err(bad(format!(
                "npy format version {major}.{minor} is not read"
            )))
        }
    };
    if header_len > MAX_HEADER || prefix + header_len > e.size {
        return Err(bad(format!(
            "its header claims {header_len} bytes, more than the entry or an npy header holds"
        )));
    }
    let header = read_at(r, e.data_start + prefix, header_len as usize)?;
    let text = std::str::from_utf8(&header).map_err(|_| bad("its header is not text".into()))?;
    let (descr, fortran_order, shape) = parse_header(text).map_err(&bad)?;
    let dtype = Dtype::parse(&descr).map_err(&bad)?;
    let data_len = e.size - prefix - header_len;
    let claimed = shape
        .iter()
        .try_fold(dtype.item_bytes(), |acc, &d| acc.checked_mul(d));
    match claimed {
        Some(c) if c == data_len => {}
        Some(c) => {
            return Err(bad(format!(
                "its header claims shape {shape:?} of {dtype}, {c} bytes, but the entry holds \
                 {data_len} bytes of data"
            )))
        }
        None => {
            return Err(bad(format!(
                "its header claims shape {shape:?} of {dtype}, more bytes than can exist"
            )))
        }
    }
    Ok(Array {
        name: e.name.trim_end_matches(".npy").to_owned(),
        dtype,
        fortran_order,
        shape,
        data_start: e.data_start + prefix + header_len,
        data_len,
    })
}

/// The header dict numpy writes: `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (5, 1, 13, 64), }` (any key order, padded with spaces and a
/// newline). Exactly these three keys, each once; a structured dtype (a
/// list as `descr`) is refused.
fn parse_header(text: &str) -> std::result::Result<(String, bool, Vec<u64>), String> {
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.ws();
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let dup = match key.as_str() {
            "descr" => {
                if p.peek() == Some(b'[') {
                    return Err("structured dtypes are not read".into());
                }
                descr.replace(p.string()?).is_some()
            }
            "fortran_order" => fortran.replace(p.boolean()?).is_some(),
            "shape" => shape.replace(p.tuple()?).is_some(),
            other => return Err(format!("its header has an unknown key {other:?}")),
        };
        if dup {
            return Err(format!("its header repeats {key:?}"));
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err("its header has text after the dict".into());
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err("its header lacks descr, fortran_order or shape".into()),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "its header is not a Python dict (expected {:?} at byte {})",
                c as char, self.i
            ))
        }
    }
    /// A quoted string without escapes.
    fn string(&mut self) -> std::result::Result<String, String> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("its header has no string at byte {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = &self.s[start..self.i];
                self.i += 1;
                return String::from_utf8(s.to_vec()).map_err(|_| "its header is not text".into());
            }
            if c == b'\\' {
                return Err("its header has an escaped string".into());
            }
            self.i += 1;
        }
        Err("its header has an unterminated string".into())
    }
    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, v) in [(&b"True"[..], true), (b"False", false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err("its header's fortran_order is not True or False".into())
    }
    /// `()`, `(3,)`, `(5, 1, 13, 64)`.
    fn tuple(&mut self) -> std::result::Result<Vec<u64>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let d: u64 = digits.parse().map_err(|_| {
                format!("its header's shape is not a tuple of sizes (byte {start})")
            })?;
            self.eat(b'L'); // Python 2's long integers
            dims.push(d);
            if dims.len() > MAX_DIMS {
                return Err(format!("its header's shape has over {MAX_DIMS} dimensions"));
            }
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                break;
            }
        }
        Ok(dims)
    }
}

/// The states of a session's lens rows: `hidden_states` `[rows, 1, tokens,
/// width]`, read and checked.
#[derive(Debug)]
pub struct SessionStates {
    pub rows: usize,
    pub tokens: usize,
    pub width: usize,
    /// `rows * tokens * width` values, row by row.
    pub data: Vec<f32>,
    /// The file's own row names (`layer_names`), when it has them.
    pub names: Option<Vec<String>>,
}

impl<R: Read + Seek> Npz<R> {
    /// The arrays of a session as this server writes them (see
    /// `npz::run_npz`) checked against each other and against `tokens`, the
    /// length of the session's `input_ids`: hidden_states `[rows, 1,
    /// tokens, D]`, logits `[1, tokens, V]`, layer_names `[rows]`,
    /// post_attention_states `[n, 1, tokens, D]` and attentions `[n, 1, H,
    /// tokens, tokens]`, all float32 but the names, none empty; then the
    /// hidden states, which must be finite. Other arrays are left unread.
    pub fn session_states(&mut self, tokens: usize) -> Result<SessionStates> {
        let hidden = self
            .get("hidden_states")
            .cloned()
            .ok_or_else(|| invalid("it has no readable hidden_states (no hidden_states.npy)"))?;
        let shape = &hidden.shape;
        let [rows, 1, t, d] = shape[..] else {
            return Err(invalid(format!(
                "hidden_states has shape {shape:?}, not [rows, 1, tokens, hidden size]"
            )));
        };
        if rows == 0 || t == 0 || d == 0 {
            return Err(invalid(format!(
                "hidden_states is empty (shape {shape:?}): no states to compare"
            )));
        }
        if t != tokens as u64 {
            return Err(invalid(format!(
                "hidden_states holds states of {t} tokens, but config.json's input_ids has {tokens}"
            )));
        }
        if !hidden.dtype.is_f32_le() || hidden.fortran_order {
            return Err(invalid(format!(
                "hidden_states is {}{}, not little-endian float32 ('<f4') in C order",
                hidden.dtype,
                if hidden.fortran_order {
                    " in Fortran order"
                } else {
                    ""
                }
            )));
        }
        let t = tokens as u64;
        for (name, want) in [
            ("logits", "[1, tokens, vocabulary size]"),
            ("post_attention_states", "[layers, 1, tokens, hidden size]"),
            ("attentions", "[layers, 1, heads, tokens, tokens]"),
        ] {
            let Some(a) = self.get(name) else { continue };
            let fits = match (name, &a.shape[..]) {
                ("logits", &[1, x, v]) => x == t && v > 0,
                ("post_attention_states", &[n, 1, x, w]) => n > 0 && x == t && w == d,
                ("attentions", &[n, 1, h, q, k]) => n > 0 && h > 0 && q == t && k == t,
                _ => false,
            };
            if !a.dtype.is_f32_le() || a.fortran_order || !fits {
                return Err(invalid(format!(
                    "{name} has shape {:?} of {}{}; with {tokens} tokens in config.json's \
                     input_ids and hidden states of width {d}, it must be {want} of '<f4'",
                    a.shape,
                    a.dtype,
                    if a.fortran_order {
                        " in Fortran order"
                    } else {
                        ""
                    }
                )));
            }
        }
        let names = match self.get("layer_names").cloned() {
            Some(a) => {
                let names = self.read_unicode(&a)?;
                if names.len() as u64 != rows {
                    return Err(invalid(format!(
                        "layer_names names {} rows, but hidden_states has {rows}",
                        names.len()
                    )));
                }
                Some(names)
            }
            None => None,
        };
        let data = self.read_f32(&hidden)?;
        let (rows, width) = (rows as usize, d as usize);
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            let row = i / (tokens * width);
            let label = names
                .as_ref()
                .map(|n| format!(" ({:?})", n[row]))
                .unwrap_or_default();
            return Err(invalid(format!(
                "hidden_states row {row}{label} holds {} at token {} (dimension {}): saved \
                 states must be finite",
                data[i],
                i / width % tokens,
                i % width
            )));
        }
        Ok(SessionStates {
            rows,
            tokens,
            width,
            data,
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor as IoCursor, Write};

    use super::*;
    use ndarray::{ArrayD, IxDyn};
    use ndarray_npy::WriteNpyExt;
    use zip::write::SimpleFileOptions;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    fn f32_npy(shape: &[usize], f: impl Fn(usize) -> f32) -> Vec<u8> {
        let n = shape.iter().product();
        let a = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap();
        let mut b = Vec::new();
        a.write_npy(&mut b).unwrap();
        b
    }

    fn zip_of(entries: &[(&str, Vec<u8>)], large: bool) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(IoCursor::new(Vec::new()));
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(large);
        for (name, bytes) in entries {
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    fn open(bytes: Vec<u8>) -> Result<Npz<IoCursor<Vec<u8>>>> {
        let len = bytes.len() as u64;
        Npz::open(IoCursor::new(bytes), len)
    }

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(ReadError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn session(hidden: Vec<u8>) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("hidden_states.npy", hidden),
            ("logits.npy", f32_npy(&[1, 3, 7], |i| i as f32)),
            (
                "layer_names.npy",
                crate::npz::unicode_npy(&["Embeddings".into(), "Final Output".into()]),
            ),
            ("post_attention_states.npy", f32_npy(&[1, 1, 3, 4], |_| 0.5)),
        ]
    }

    #[test]
    fn reads_what_the_server_writes_zip64_or_not() {
        for large in [true, false] {
            let bytes = zip_of(&session(f32_npy(&[2, 1, 3, 4], |i| i as f32)), large);
            let mut z = open(bytes).unwrap();
            assert_eq!(z.arrays().len(), 4);
            let s = z.session_states(3).unwrap();
            assert_eq!((s.rows, s.tokens, s.width), (2, 3, 4));
            assert_eq!(s.data, (0..24).map(|i| i as f32).collect::<Vec<_>>());
            assert_eq!(
                s.names.unwrap(),
                ["Embeddings".to_string(), "Final Output".to_string()]
            );
        }
    }

    /// A zip64 end record, as writers use past 65535 entries or 4 GiB: the
    /// 32-bit end record saturated, the real values in the zip64 one.
    #[test]
    fn reads_the_zip64_end_record() {
        let mut z = zip::ZipWriter::new(IoCursor::new(Vec::new()));
        z.set_zip64_comment(Some(""));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in session(f32_npy(&[2, 1, 3, 4], |i| i as f32)) {
            z.start_file(name, opts).unwrap();
            z.write_all(&bytes).unwrap();
        }
        let mut bytes = z.finish().unwrap().into_inner();
        let e = bytes.len() - EOCD_LEN;
        assert_eq!(&bytes[e..e + 4], b"PK\x05\x06");
        bytes[e + 8..e + 20].copy_from_slice(&[0xFF; 12]);
        let mut z = open(bytes.clone()).unwrap();
        assert_eq!(z.session_states(3).unwrap().data[23], 23.0);
        // Its entry count is checked like the 32-bit one.
        let rec = bytes.windows(4).rposition(|w| w == b"PK\x06\x06").unwrap();
        bytes[rec + 24..rec + 40].copy_from_slice(&[0x01, 0, 0, 0, 0, 0, 0, 0x01].repeat(2));
        assert!(err(open(bytes)).contains("entries"));
    }

    #[test]
    fn headers_in_other_spellings_parse() {
        for (h, shape) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                vec![2, 3],
            ),
            (
                "{\"shape\": (6,), \"fortran_order\": False, \"descr\": \"<f4\"}",
                vec![6],
            ),
            (
                "{'descr':'<f4','fortran_order':False,'shape':(1L, 6L)}   \n",
                vec![1, 6],
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (), }",
                vec![],
            ),
        ] {
            let (d, _, s) = parse_header(h).unwrap_or_else(|e| panic!("{h}: {e}"));
            assert_eq!((d.as_str(), s), ("<f4", shape), "{h}");
        }
        for bad in [
            "{'descr': '<f4', 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
        ] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        for bad in ["|O", "<U0", "<f3", "<V8", "<M8", "", "<"] {
            assert!(Dtype::parse(bad).is_err(), "{bad}");
        }
        assert!(Dtype::parse("|O").unwrap_err().contains("object arrays"));
    }

    #[test]
    fn claimed_shapes_must_match_the_bytes() {
        let huge = npy("<f4", "(1000000000000, 1, 13, 64)", &[0; 64]);
        let m = err(open(zip_of(&[("hidden_states.npy", huge)], true)));
        assert!(
            m.contains("3328000000000000 bytes") && m.contains("64 bytes"),
            "{m}"
        );
        // So large the byte count overflows.
        let over = npy("<f8", "(4294967296, 4294967296)", &[]);
        let m = err(open(zip_of(&[("x.npy", over)], false)));
        assert!(m.contains("more bytes than can exist"), "{m}");
        // One float short.
        let short = npy("<f4", "(2, 2)", &[0; 12]);
        assert!(err(open(zip_of(&[("x.npy", short)], false))).contains("12 bytes of data"));
        // Zero-width strings would let any count fit in no bytes.
        let zero = npy("<U0", "(1000000000000,)", &[]);
        assert!(err(open(zip_of(&[("layer_names.npy", zero)], false))).contains("<U0"));
        // A header longer than its entry.
        let mut cut = npy("<f4", "(1,)", &[0; 4]);
        cut.truncate(20);
        assert!(err(open(zip_of(&[("x.npy", cut)], false))).contains("header claims"));
    }

    #[test]
    fn the_zip_directory_is_checked() {
        let good = zip_of(&session(f32_npy(&[2, 1, 3, 4], |_| 0.0)), false);
        // Not a zip; cut short; junk after the end record.
        assert!(err(open(b"PK? no".to_vec())).contains("not a zip"));
        assert!(err(open(good[..good.len() - 30].to_vec())).contains("not a zip"));
        let mut junk = good.clone();
        junk.extend_from_slice(b"junk");
        assert!(err(open(junk)).contains("not a zip"));
        // The entry count in the end record inflated.
        let mut many = good.clone();
        let e = many.len() - EOCD_LEN;
        many[e + 8..e + 12].copy_from_slice(&[0xFE, 0xFF, 0xFE, 0xFF]);
        assert!(err(open(many)).contains("65534 entries"));
        // An entry's size inflated in the central directory.
        let cd = good.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let mut big = good.clone();
        big[cd + 20..cd + 28].copy_from_slice(&[0xF0, 0xFF, 0xFF, 0x7F, 0xF0, 0xFF, 0xFF, 0x7F]);
        assert!(err(open(big)).contains("more than the file holds"));
        // Compressed (method 8, deflate).
        let mut deflated = good.clone();
        deflated[cd + 10] = 8;
        assert!(err(open(deflated)).contains("compressed"));
        // Encrypted.
        let mut locked = good.clone();
        locked[cd + 8] |= 1;
        assert!(err(open(locked)).contains("encrypted"));
        // Entries that are not arrays, or twice the same.
        assert!(err(open(zip_of(&[("notes.txt", b"hi".to_vec())], false))).contains("not an array"));
        let one = npy("<f4", "(1,)", &[0; 4]);
        let twice = zip_of(&[("a.npy", one.clone()), ("b.npy", one)], false);
        let mut twice = twice;
        let at = twice.windows(5).rposition(|w| w == b"b.npy").unwrap();
        twice[at] = b'a';
        let m = err(open(twice));
        assert!(m.contains("twice") || m.contains("local header"), "{m}");
        // Not npy inside.
        assert!(
            err(open(zip_of(&[("x.npy", b"0123456789abc".to_vec())], false)))
                .contains("no \\x93NUMPY")
        );
    }

    #[test]
    fn session_layout_and_values_are_checked() {
        let ok = |h: Vec<u8>| zip_of(&session(h), true);
        let states = |b: Vec<u8>, t: usize| err(open(b).unwrap().session_states(t));
        assert!(states(ok(f32_npy(&[2, 1, 3, 4], |_| 0.0)), 4)
            .contains("3 tokens, but config.json's input_ids has 4"));
        assert!(states(ok(f32_npy(&[2, 3, 4], |_| 0.0)), 3).contains("not [rows, 1, tokens"));
        assert!(states(ok(f32_npy(&[], |_| 0.0)), 3).contains("not [rows, 1, tokens"));
        assert!(states(ok(f32_npy(&[2, 1, 0, 4], |_| 0.0)), 0).contains("is empty"));
        assert!(states(ok(f32_npy(&[3, 1, 3, 4], |_| 0.0)), 3).contains("layer_names names 2"));
        let m = states(
            ok(f32_npy(
                &[2, 1, 3, 4],
                |i| if i == 21 { f32::NAN } else { 0.0 },
            )),
            3,
        );
        assert!(
            m.contains("row 1 (\"Final Output\") holds NaN at token 2 (dimension 1)"),
            "{m}"
        );
        // float64 states; logits of other tokens; 0-d names.
        let f64s = npy("<f8", "(2, 1, 3, 4)", &[0; 2 * 3 * 4 * 8]);
        assert!(states(ok(f64s), 3).contains("not little-endian float32"));
        let mut e = session(f32_npy(&[2, 1, 3, 4], |_| 0.0));
        e[1].1 = f32_npy(&[1, 2, 7], |_| 0.0);
        assert!(states(zip_of(&e, false), 3).contains("logits has shape [1, 2, 7]"));
        let mut e = session(f32_npy(&[2, 1, 3, 4], |_| 0.0));
        e[2].1 = npy("<U4", "()", &[0; 16]);
        assert!(states(zip_of(&e, false), 3).contains("layer_names has shape []"));
        let e = vec![("logits.npy", f32_npy(&[1, 3, 7], |_| 0.0))];
        assert!(states(zip_of(&e, false), 3).contains("no readable hidden_states"));
    }
}
