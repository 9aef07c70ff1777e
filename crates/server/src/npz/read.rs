//! The reader half of `tensors.npz`, for files that come from outside: a
//! session folder unpacked from someone else is untrusted input. Read with
//! the crates that write it: `zip` reads the central directory and finds
//! each entry's data through its local header, `ndarray-npy` parses every
//! array's `.npy` header and reads the float data. Each claim the file
//! makes (entry count, offsets, sizes, dtype, shape) is checked against the
//! bytes the file holds before anything is allocated from it: no
//! allocation depends on a number the file's size does not back.
//!
//! The crates do not bound everything, so a few checks stay here, each
//! where the crate would otherwise act on an unchecked number:
//! - `end_records`: `zip` reads as many directory entries as the end
//!   record claims (a zip64 one may claim one per 46 bytes of the file) and
//!   has no setting to limit them; when a directory does not parse it
//!   retries with any earlier end record signature in the file. So the end
//!   record is read here first (entry count, directory size, no second
//!   signature), and `Masked` shows the crate nothing before the checked
//!   directory while it reads it.
//! - `entries`: the crate does not compare an entry's local header name
//!   with the directory's, nor check sizes and offsets against the file.
//! - `array_header`: `ndarray-npy` allocates the header length an npy
//!   file claims (up to 4 GiB in format 2.0 and 3.0) before reading it, and
//!   the element count its shape claims before reading the data. The
//!   12-byte prefix is read here and the shape checked against the entry's
//!   size; the crate parses the checked header and reads the data.
//! - String arrays (`<U`, `layer_names`): the crate reads no string dtype
//!   (and `npz::unicode_npy` writes them by hand for the same reason), so
//!   [`Npz::read_unicode`] decodes them.
//!
//! Read: what `np.savez` and this server write — a zip (zip64 or not) of at
//! most [`MAX_ENTRIES`] uncompressed `.npy` entries, npy format 1.0 to 3.0,
//! numeric, bool and string dtypes; the session arrays in their layout
//! ([`Npz::session_states`]). Anything else is refused with the reason.
//! Header dicts are Python literals as `ndarray-npy` reads them: a repeated
//! key keeps its last value (as in Python), Python 2's `1L` is not read.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};

use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadDataError, ReadableElement};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

/// A session's file has 4 or 5 arrays; a zip claiming more than this is not
/// one, and its directory is refused before it is read.
pub const MAX_ENTRIES: u64 = 64;
/// An array name longer than this is not one of a session's.
const MAX_NAME: usize = 255;
/// The central directory of [`MAX_ENTRIES`] entries (with the zip64 end
/// records after it) is a few KiB; this leaves room for large extra fields
/// and comments.
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
    /// `ndarray-npy` knows a descr only as the one of the Rust type it is
    /// asked to read, after allocating for it; the size of an element of
    /// any descr, needed to check a shape against the bytes, is found here.
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
    /// The header as `ndarray-npy` parsed it, for it to read the data by.
    header: Header,
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
        let end = end_records(&mut reader, len)?;
        let entries = entries(&mut reader, &end)?;
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
        // `n` is backed by the file: the entry's bytes lie inside it (checked
        // when the directory was read), and there are exactly 4 per value.
        self.reader.seek(SeekFrom::Start(a.data_start))?;
        let data = Read::take(&mut self.reader, a.data_len);
        f32::read_to_end_exact_vec(data, &a.header.type_descriptor, n).map_err(|e| match e {
            ReadDataError::Io(e) => e.into(),
            ReadDataError::MissingData => io::Error::from(io::ErrorKind::UnexpectedEof).into(),
            e => invalid(format!("{}: {e}", a.name)),
        })
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
        let bytes = read_at(&mut self.reader, a.data_start, len)?;
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
const EOCD_SIG: &[u8] = b"PK\x05\x06";

/// What the end record says, checked: the central directory starts at
/// `cd_at` and lists `entries` entries.
struct End {
    cd_at: u64,
    entries: u64,
}

/// The end record of a zip of `len` bytes (and its zip64 record, when it
/// has one), read before the `zip` crate reads the directory it points to:
/// at most [`MAX_ENTRIES`] entries in at most [`MAX_DIRECTORY`] bytes, all
/// inside the file, and no other end record signature after the start of
/// the directory (with [`Masked`], the crate then sees no end record but
/// this one).
fn end_records<R: Read + Seek>(r: &mut R, len: u64) -> Result<End> {
    if len < EOCD_LEN as u64 {
        return Err(invalid(format!("not a zip file ({len} bytes)")));
    }
    // The end record is the last 22 bytes before a comment of at most 64 KiB.
    // It is the last end record signature in the file, which the crate tries
    // first.
    let tail_len = len.min(EOCD_LEN as u64 + 0xFFFF) as usize;
    let tail_at = len - tail_len as u64;
    let tail = read_at(r, tail_at, tail_len)?;
    let pos = tail
        .windows(4)
        .rposition(|w| w == EOCD_SIG)
        .filter(|&i| {
            i + EOCD_LEN <= tail_len && i + EOCD_LEN + usize::from(u16le(&tail, i + 20)) == tail_len
        })
        .ok_or_else(|| invalid("not a zip file (no end of central directory record)"))?;
    let eocd_at = tail_at + pos as u64;
    let e = &tail[pos..];
    let (mut disk, mut cd_disk) = (u32::from(u16le(e, 4)), u32::from(u16le(e, 6)));
    let (mut n_here, mut n) = (u64::from(u16le(e, 8)), u64::from(u16le(e, 10)));
    let (mut cd_size, mut cd_at) = (u64::from(u32le(e, 12)), u64::from(u32le(e, 16)));
    // The central directory lies before this.
    let mut end = eocd_at;
    // When the crate looks for zip64 records (and it finds the locator by
    // its signature alone, so one must be there).
    if n == 0xFFFF || cd_at == 0xFFFF_FFFF {
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
    if cd_at.checked_add(cd_size).is_none_or(|x| x > end) || eocd_at - cd_at > MAX_DIRECTORY {
        return Err(invalid(format!(
            "the zip's central directory ({cd_size} bytes at {cd_at}) does not fit the file, \
             or is over {MAX_DIRECTORY} bytes before its end record"
        )));
    }
    let directory = read_at(r, cd_at, (eocd_at - cd_at) as usize)?;
    if directory.windows(4).any(|w| w == EOCD_SIG) {
        return Err(invalid(
            "the zip's central directory holds a second end record signature (PK\\x05\\x06)",
        ));
    }
    Ok(End { cd_at, entries: n })
}

/// The file as the `zip` crate sees it while it reads the central
/// directory: zeros before `hide_before` (the checked directory's start),
/// and an error for a read that lies wholly there. So if the checked
/// directory does not parse, the crate finds no earlier end record to try
/// instead (whose claims were not checked), and gives up.
struct Masked<'a, R> {
    inner: &'a mut R,
    pos: u64,
    hide_before: &'a Cell<u64>,
}

impl<R: Read + Seek> Read for Masked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let hide = self.hide_before.get();
        let n = if self.pos >= hide || buf.is_empty() {
            self.inner.read(buf)?
        } else if self.pos + buf.len() as u64 <= hide {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no valid central directory where the end record points",
            ));
        } else {
            let k = (hide - self.pos) as usize;
            buf[..k].fill(0);
            self.inner.seek(SeekFrom::Start(hide))?;
            k
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Masked<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }

    /// Without a seek, which would drop a `BufReader`'s buffer.
    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// A `zip` error in words, `what` saying what was being read: a fault of
/// the file, unless it is an i/o error other than the file ending early or
/// holding what the crate or [`Masked`] refuses.
fn zip_error(what: &str, e: ZipError) -> ReadError {
    match e {
        ZipError::Io(e) => match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid(format!("{what}: the file ends early")),
            io::ErrorKind::InvalidData => invalid(format!("{what}: {e}")),
            _ => ReadError::Io(e),
        },
        e => invalid(format!("{what}: {e}")),
    }
}

/// The entries of the zip whose end record is `end`, read by the `zip`
/// crate, each checked here where the crate does not: a short UTF-8 `.npy`
/// name, stored (not compressed, not encrypted), its bytes inside the file
/// before the directory, its local header naming it, no two sharing bytes.
fn entries<R: Read + Seek>(r: &mut R, end: &End) -> Result<Vec<Entry>> {
    let hide_before = Cell::new(end.cd_at);
    let masked = Masked {
        pos: r.stream_position()?,
        inner: &mut *r,
        hide_before: &hide_before,
    };
    let mut zip = ZipArchive::new(masked).map_err(|e| zip_error("not a readable zip", e))?;
    // The directory read; local headers and data lie before it.
    hide_before.set(0);
    if zip.offset() != 0 || zip.central_directory_start() != end.cd_at {
        return Err(invalid(
            "the zip's central directory is not where its end record says",
        ));
    }
    // The crate keeps one entry per name.
    if zip.len() as u64 != end.entries {
        return Err(invalid(format!(
            "the zip lists {} entries under {} names: an array appears twice",
            end.entries,
            zip.len()
        )));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        // Quoted: not yet checked to be a name.
        let label = format!("{:?}", zip.name_for_index(i).unwrap_or_default());
        // Reads the local header, for where the data starts.
        let f = zip
            .by_index_raw(i)
            .map_err(|e| zip_error(&format!("{label}: its local header is damaged"), e))?;
        let name = std::str::from_utf8(f.name_raw())
            .ok()
            .filter(|s| s.len() <= MAX_NAME)
            .ok_or_else(|| invalid("an entry's name is not a short UTF-8 name"))?
            .to_owned();
        if f.encrypted() {
            return Err(invalid(format!("{name} is encrypted")));
        }
        if f.compression() != CompressionMethod::Stored {
            return Err(invalid(format!(
                "{name} is compressed (zip compression {}); only uncompressed arrays are \
                 read, as np.savez writes them (not np.savez_compressed)",
                f.compression()
            )));
        }
        let size = f.size();
        if f.compressed_size() != size {
            return Err(invalid(format!("{name}: its zip sizes disagree")));
        }
        if !name.ends_with(".npy") || name.len() == 4 {
            return Err(invalid(format!(
                "{name:?} is not an array: an npz holds only .npy entries"
            )));
        }
        let (header_start, data_start) = (f.header_start(), f.data_start());
        if data_start.checked_add(size).is_none_or(|x| x > end.cd_at) {
            return Err(invalid(format!(
                "{name} claims {size} bytes, more than the file holds"
            )));
        }
        entries.push(Entry {
            name,
            header_start,
            data_start,
            size,
        });
    }
    drop(zip);
    // The crate finds the data past the local header by the lengths in it,
    // but does not compare the name there with the directory's.
    for e in &entries {
        let local_name_len = u16le(&read_at(r, e.header_start + 26, 2)?, 0);
        if usize::from(local_name_len) != e.name.len()
            || read_at(r, e.header_start + 30, e.name.len())? != e.name.as_bytes()
        {
            return Err(invalid(format!(
                "{}: its local header names another file",
                e.name
            )));
        }
    }
    // No two entries share bytes, local headers included (the crate's
    // `has_overlapping_files` compares only the data of non-empty entries).
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

/// An entry's npy header, checked against the entry's size. The prefix
/// (magic, version, header length) is read here: `ndarray-npy` would
/// allocate the claimed header length before reading it. The header itself
/// is parsed by the crate.
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
    let bytes = read_at(r, e.data_start, (prefix + header_len) as usize)?;
    let header = Header::from_reader(&mut bytes.as_slice())
        .map_err(|err| bad(format!("its npy header is not read ({err})")))?;
    let descr = header
        .type_descriptor
        .as_string()
        .ok_or_else(|| bad("structured dtypes are not read".into()))?;
    let dtype = Dtype::parse(descr).map_err(&bad)?;
    if header.shape.len() > MAX_DIMS {
        return Err(bad(format!(
            "its header's shape has over {MAX_DIMS} dimensions"
        )));
    }
    let shape: Vec<u64> = header.shape.iter().map(|&d| d as u64).collect();
    let data_len = e.size - prefix - header_len;
    // `ndarray-npy` allocates as many elements as the shape claims before
    // reading them: the claim must be exactly the entry's bytes.
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
        fortran_order: header.layout.is_fortran(),
        shape,
        header,
        data_start: e.data_start + prefix + header_len,
        data_len,
    })
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

    /// The header `text` (a newline added) over `data`, opened.
    fn with_header(text: &str, data: &[u8]) -> Result<Array> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(text.len() as u16 + 1).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(data);
        open(zip_of(&[("x.npy", b)], false)).map(|z| z.arrays()[0].clone())
    }

    #[test]
    fn headers_in_other_spellings_parse() {
        for (h, shape, fortran) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                vec![2, 3],
                false,
            ),
            (
                "{\"shape\": (6,), \"fortran_order\": False, \"descr\": \"<f4\"}",
                vec![6],
                false,
            ),
            (
                "{'descr':'<f4','fortran_order':False,'shape':(1, 6)}   ",
                vec![1, 6],
                false,
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (), }",
                vec![],
                true,
            ),
        ] {
            let n: u64 = shape.iter().product();
            let a = with_header(h, &vec![0; 4 * n as usize]).unwrap_or_else(|e| panic!("{h}: {e}"));
            assert_eq!(
                (a.dtype.to_string(), a.shape, a.fortran_order),
                ("'<f4'".into(), shape, fortran),
                "{h}"
            );
        }
        for (bad, why) in [
            ("{'descr': '<f4', 'shape': (2,), }", "fortran_order"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                "unknown key",
            ),
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
                "structured",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                "shape",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                "shape",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
                "dict",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
                "fortran_order",
            ),
            (
                "{'descr': '|O', 'fortran_order': False, 'shape': (2,)}",
                "object arrays",
            ),
        ] {
            let m = err(with_header(bad, &[0; 8]));
            assert!(m.starts_with("x.npy: ") && m.contains(why), "{bad}: {m}");
        }
        for bad in ["|O", "<U0", "<f3", "<V8", "<M8", "", "<"] {
            assert!(Dtype::parse(bad).is_err(), "{bad}");
        }
        assert!(Dtype::parse("|O").unwrap_err().contains("object arrays"));
    }

    /// A header claiming more bytes than numpy ever writes (npy 2.0 and 3.0
    /// have 32-bit header lengths) is refused before it is read; so are
    /// other npy versions.
    #[test]
    fn header_lengths_are_bounded() {
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        v2.extend_from_slice(&[b' '; 100]);
        let m = err(open(zip_of(&[("x.npy", v2.clone())], false)));
        assert!(m.contains("header claims 4294967280 bytes"), "{m}");
        v2[6] = 4;
        let m = err(open(zip_of(&[("x.npy", v2)], false)));
        assert!(m.contains("version 4.0 is not read"), "{m}");
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

    /// The `zip` crate, when a directory does not parse, tries any earlier
    /// end record in the file; it is shown none, so it reads only the
    /// directory checked here.
    #[test]
    fn only_the_checked_directory_is_read() {
        let inner = zip_of(&session(f32_npy(&[2, 1, 3, 4], |_| 0.0)), false);
        for pad in [0, 10_000] {
            let mut outer = zip_of(&[("x.npy", inner.clone()), ("y.npy", vec![0; pad])], false);
            let cd = outer.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
            outer[cd + 3] = 3;
            let fallback = zip::ZipArchive::new(IoCursor::new(outer.clone())).unwrap();
            assert_eq!(fallback.len(), 4, "unmasked, the crate reads the inner zip");
            let m = err(open(outer));
            assert!(m.contains("not a readable zip"), "{m}");
        }
        // A second end record signature inside the directory.
        let one = npy("<f4", "(1,)", &[0; 4]);
        let m = err(open(zip_of(&[("PK\x05\x06.npy", one.clone())], false)));
        assert!(m.contains("second end record"), "{m}");
        // Data before the archive: the crate would read it at an offset.
        let good = zip_of(&[("a.npy", one.clone())], false);
        let mut prefixed = b"junk".to_vec();
        prefixed.extend_from_slice(&good);
        let m = err(open(prefixed));
        assert!(m.contains("central directory"), "{m}");
        // A local header naming another file than the directory does.
        let mut renamed = good.clone();
        let at = renamed.windows(5).position(|w| w == b"a.npy").unwrap();
        renamed[at] = b'c';
        let m = err(open(renamed));
        assert!(
            m.contains("a.npy: its local header names another file"),
            "{m}"
        );
        // Two entries over the same bytes.
        let two = zip_of(&[("a.npy", one.clone()), ("b.npy", one)], false);
        let cds: Vec<usize> = two
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"PK\x01\x02")
            .map(|(i, _)| i)
            .collect();
        let mut shared = two.clone();
        let first_offset = shared[cds[0] + 42..cds[0] + 46].to_vec();
        shared[cds[1] + 42..cds[1] + 46].copy_from_slice(&first_offset);
        let m = err(open(shared));
        assert!(
            m.contains("local header names another file") || m.contains("overlap"),
            "{m}"
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
