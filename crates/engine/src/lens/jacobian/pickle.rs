//! The part of Python's pickle that `torch.save` writes for a Jacobian
//! lens, read and written here rather than through candle's reader, which
//! drops dict entries whose keys are not strings (`J` is keyed by int) and
//! would give an empty lens without a word.
//!
//! Read: protocols 2 to 5 — `None`, bools, ints, floats, str, lists,
//! tuples, dicts with keys of any of those kinds, `collections.OrderedDict`,
//! and tensors as `torch._utils._rebuild_tensor_v2` over a persistent
//! storage id of `torch.HalfStorage`, `FloatStorage` or `BFloat16Storage`.
//! Anything else (another global, bytes, sets, object state) is refused,
//! naming it: nothing in the file is ever called. Written: protocol 2, the
//! opcodes torch itself uses, and only the globals `torch.load(...,
//! weights_only=True)` allows.

use std::collections::HashMap;
use std::rc::Rc;

/// A value of a pickle as read, containers resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Entries in the order written, keys of any kind.
    Dict(Vec<(Value, Value)>),
    Tensor(TensorRef),
}

impl Value {
    /// What it is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Dict(_) => "a dict",
            Value::Tensor(_) => "a tensor",
        }
    }

    /// The entry of a dict under the string key `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The storage types a lens's tensors come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Half,
    Float,
    BFloat16,
}

impl Storage {
    pub(crate) fn size_in_bytes(self) -> usize {
        match self {
            Storage::Half | Storage::BFloat16 => 2,
            Storage::Float => 4,
        }
    }

    fn class_name(self) -> &'static str {
        match self {
            Storage::Half => "HalfStorage",
            Storage::Float => "FloatStorage",
            Storage::BFloat16 => "BFloat16Storage",
        }
    }
}

/// A tensor as the pickle describes it: a view of a storage stored beside
/// it in the archive (`data/<key>`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: Storage,
    pub key: String,
    /// Elements of the storage.
    pub numel: usize,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The globals a lens file may name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    RebuildTensor,
    OrderedDict,
    Storage(Storage),
}

/// An item on the machine's stack: containers by index into the arena, so
/// one filled after it was memoized is the same container when fetched;
/// tuples shared, so fetching one from the memo copies nothing (a small
/// pickle cannot make us copy a tuple of tuples exponentially).
#[derive(Debug, Clone)]
enum Item {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Tuple(Rc<Vec<Item>>),
    List(usize),
    Dict(usize),
    Global(Global),
    StorageId(Storage, String, usize),
    Tensor(TensorRef),
}

enum Container {
    List(Vec<Item>),
    Dict(Vec<(Item, Item)>),
}

/// Items a file may resolve to in all (shared containers count each time
/// they are reached, strings by their length as well), bounding what a
/// small file can make us build.
const MAX_ITEMS: usize = 1 << 20;
/// Nesting deeper than this is refused (a container inside itself).
const MAX_DEPTH: usize = 64;

type Res<T> = std::result::Result<T, String>;

struct Machine<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u64, Item>,
    arena: Vec<Container>,
}

/// Run the pickle `data` to its value.
pub(crate) fn read(data: &[u8]) -> Res<Value> {
    let mut m = Machine {
        data,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena: Vec::new(),
    };
    let top = m.run()?;
    let mut budget = MAX_ITEMS;
    m.resolve(&top, 0, &mut budget)
}

impl Machine<'_> {
    fn bytes(&mut self, n: usize) -> Res<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("the pickle ends inside an opcode at byte {}", self.at))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Res<u8> {
        Ok(self.bytes(1)?[0])
    }

    fn uint(&mut self, n: usize) -> Res<u64> {
        let b = self.bytes(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn line(&mut self) -> Res<String> {
        let rest = &self.data[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL opcode has no end of line")?;
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| "a GLOBAL opcode's name is not UTF-8")?
            .to_owned();
        self.at += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: u64) -> Res<String> {
        let n = usize::try_from(n).map_err(|_| "a string longer than memory")?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a string that is not UTF-8".into())
    }

    fn pop(&mut self) -> Res<Item> {
        self.stack
            .pop()
            .ok_or_else(|| format!("an opcode at byte {} found the stack empty", self.at))
    }

    /// The items since the last MARK, the mark removed.
    fn pop_mark(&mut self) -> Res<Vec<Item>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| format!("an opcode at byte {} needs a MARK", self.at))?;
        if m > self.stack.len() {
            return Err("a MARK below the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn top_container(&mut self) -> Res<usize> {
        match self.stack.last() {
            Some(Item::List(i) | Item::Dict(i)) => Ok(*i),
            Some(other) => Err(format!(
                "an item is added to {} at byte {}, which is not a list or dict",
                describe(other),
                self.at
            )),
            None => Err("an item is added to an empty stack".into()),
        }
    }

    fn new_container(&mut self, c: Container) -> Res<usize> {
        if self.arena.len() >= MAX_ITEMS {
            return Err("more containers than a lens file holds".into());
        }
        self.arena.push(c);
        Ok(self.arena.len() - 1)
    }

    fn set_items(&mut self, items: Vec<Item>) -> Res<()> {
        if !items.len().is_multiple_of(2) {
            return Err("a dict is given a key without a value".into());
        }
        let i = self.top_container()?;
        let Container::Dict(d) = &mut self.arena[i] else {
            return Err("key-value pairs are added to a list".into());
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Item>) -> Res<()> {
        let i = self.top_container()?;
        let Container::List(l) = &mut self.arena[i] else {
            return Err("items are appended to a dict".into());
        };
        l.extend(items);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Res<()> {
        let top = self.stack.last().ok_or("a memo entry of an empty stack")?;
        self.memo.insert(key, top.clone());
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Res<()> {
        let item = self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo entry {key} is read before it is written"))?
            .clone();
        self.stack.push(item);
        Ok(())
    }

    fn tuple(&mut self, n: usize) -> Res<()> {
        if self.stack.len() < n {
            return Err("a tuple of more items than the stack holds".into());
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.stack.push(Item::Tuple(Rc::new(items)));
        Ok(())
    }

    /// Execute opcodes until STOP; the value on top.
    fn run(&mut self) -> Res<Item> {
        loop {
            let at = self.at;
            let op = self.u8()?;
            if op == b'.' {
                return self.pop();
            }
            let handled = self.scalar(op)? || self.structure(op)? || self.reference(op)?;
            if !handled {
                return Err(refused_opcode(op, at));
            }
        }
    }

    /// Framing, marks and scalars: whether `op` was one.
    fn scalar(&mut self, op: u8) -> Res<bool> {
        let item = match op {
            0x80 => {
                let v = self.u8()?;
                if v > 5 {
                    return Err(format!("pickle protocol {v} is newer than any known (5)"));
                }
                return Ok(true);
            }
            0x95 => {
                self.uint(8)?; // FRAME: its length only
                return Ok(true);
            }
            b'(' => {
                self.marks.push(self.stack.len());
                return Ok(true);
            }
            b'0' => {
                self.pop()?;
                return Ok(true);
            }
            b'1' => {
                self.pop_mark()?;
                return Ok(true);
            }
            b'N' => Item::None,
            0x88 => Item::Bool(true),
            0x89 => Item::Bool(false),
            b'J' => Item::Int(i64::from(self.uint(4)? as u32 as i32)),
            b'K' => Item::Int(self.uint(1)? as i64),
            b'M' => Item::Int(self.uint(2)? as i64),
            0x8a => {
                let n = self.u8()? as usize;
                Item::Int(long(self.bytes(n)?)?)
            }
            b'G' => {
                let b: [u8; 8] = self.bytes(8)?.try_into().expect("8 bytes");
                Item::Float(f64::from_be_bytes(b))
            }
            b'X' | 0x8c | 0x8d => {
                let width = match op {
                    b'X' => 4,
                    0x8c => 1,
                    _ => 8,
                };
                let n = self.uint(width)?;
                Item::Str(self.text(n)?.into())
            }
            _ => return Ok(false),
        };
        self.stack.push(item);
        Ok(true)
    }

    /// Lists, tuples and dicts: whether `op` was one of theirs.
    fn structure(&mut self, op: u8) -> Res<bool> {
        match op {
            b']' | b'l' => {
                let items = if op == b'l' {
                    self.pop_mark()?
                } else {
                    Vec::new()
                };
                let i = self.new_container(Container::List(items))?;
                self.stack.push(Item::List(i))
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?
            }
            b')' => self.stack.push(Item::Tuple(Rc::new(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Item::Tuple(Rc::new(items)))
            }
            0x85..=0x87 => self.tuple(usize::from(op - 0x84))?,
            b'}' | b'd' => {
                let items = if op == b'd' {
                    self.pop_mark()?
                } else {
                    Vec::new()
                };
                let i = self.new_container(Container::Dict(Vec::new()))?;
                self.stack.push(Item::Dict(i));
                self.set_items(items)?
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo, globals, persistent ids and calls: whether `op` was one.
    fn reference(&mut self, op: u8) -> Res<bool> {
        match op {
            b'q' | b'r' | 0x94 => {
                let k = match op {
                    b'q' => self.uint(1)?,
                    b'r' => self.uint(4)?,
                    _ => self.memo.len() as u64,
                };
                self.memo_put(k)?
            }
            b'h' | b'j' => {
                let k = self.uint(if op == b'h' { 1 } else { 4 })?;
                self.memo_get(k)?
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Item::Global(global(&module, &name)?))
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Item::Str(m), Item::Str(n)) = (module, name) else {
                    return Err("STACK_GLOBAL of names that are not strings".into());
                };
                self.stack.push(Item::Global(global(&m, &n)?))
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent(pid)?;
                self.stack.push(storage)
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let out = self.reduce(callable, args)?;
                self.stack.push(out)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A call the file asks for: only the two it may.
    fn reduce(&mut self, callable: Item, args: Item) -> Res<Item> {
        let Item::Tuple(args) = args else {
            return Err(format!("a call with {} for its arguments", describe(&args)));
        };
        match callable {
            Item::Global(Global::OrderedDict) if args.is_empty() => {
                let i = self.new_container(Container::Dict(Vec::new()))?;
                Ok(Item::Dict(i))
            }
            Item::Global(Global::RebuildTensor) => rebuild_tensor(&args),
            Item::Global(g) => Err(format!("a call of {g:?} with {} arguments", args.len())),
            other => Err(format!("a call of {}", describe(&other))),
        }
    }

    /// An item as a [`Value`], containers copied out of the arena.
    fn resolve(&self, item: &Item, depth: usize, budget: &mut usize) -> Res<Value> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "containers nested more than {MAX_DEPTH} deep (or inside themselves)"
            ));
        }
        // Strings count by their length too: one fetched from the memo
        // many times is copied each time.
        let cost = match item {
            Item::Str(s) => 1 + s.len() / 16,
            _ => 1,
        };
        *budget = budget
            .checked_sub(cost)
            .ok_or("more items than a lens file holds")?;
        let mut all = |items: &[Item]| -> Res<Vec<Value>> {
            items
                .iter()
                .map(|i| self.resolve(i, depth + 1, budget))
                .collect()
        };
        Ok(match item {
            Item::None => Value::None,
            Item::Bool(b) => Value::Bool(*b),
            Item::Int(i) => Value::Int(*i),
            Item::Float(f) => Value::Float(*f),
            Item::Str(s) => Value::Str(s.to_string()),
            Item::Tuple(items) => Value::Tuple(all(items)?),
            Item::List(i) => match &self.arena[*i] {
                Container::List(items) => Value::List(all(items)?),
                Container::Dict(_) => unreachable!("lists are List containers"),
            },
            Item::Dict(i) => match &self.arena[*i] {
                Container::Dict(entries) => {
                    let mut out = Vec::with_capacity(entries.len());
                    for (k, v) in entries {
                        out.push((
                            self.resolve(k, depth + 1, budget)?,
                            self.resolve(v, depth + 1, budget)?,
                        ));
                    }
                    Value::Dict(out)
                }
                Container::List(_) => unreachable!("dicts are Dict containers"),
            },
            Item::Tensor(t) => Value::Tensor(t.clone()),
            Item::Global(g) => return Err(format!("{g:?} is named but never called")),
            Item::StorageId(..) => return Err("a storage outside a tensor".into()),
        })
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "None",
        Item::Bool(_) => "a bool",
        Item::Int(_) => "an int",
        Item::Float(_) => "a float",
        Item::Str(_) => "a str",
        Item::Tuple(_) => "a tuple",
        Item::List(_) => "a list",
        Item::Dict(_) => "a dict",
        Item::Global(_) => "a global",
        Item::StorageId(..) => "a storage",
        Item::Tensor(_) => "a tensor",
    }
}

/// Python's two's-complement little-endian long of LONG1.
fn long(b: &[u8]) -> Res<i64> {
    if b.is_empty() {
        return Ok(0);
    }
    if b.len() > 8 {
        return Err(format!("an int of {} bytes, beyond 64 bits", b.len()));
    }
    let mut v: u64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    let bits = 8 * b.len() as u32;
    if bits < 64 && b[b.len() - 1] & 0x80 != 0 {
        v |= u64::MAX << bits;
    }
    Ok(v as i64)
}

fn global(module: &str, name: &str) -> Res<Global> {
    Ok(match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch", "HalfStorage") => Global::Storage(Storage::Half),
        ("torch", "FloatStorage") => Global::Storage(Storage::Float),
        ("torch", "BFloat16Storage") => Global::Storage(Storage::BFloat16),
        _ => {
            return Err(format!(
                "it names {module}.{name}, which is not read here: a Jacobian lens file holds only \
                 tensors (float16, float32 or bfloat16), numbers, strings, lists and dicts"
            ))
        }
    })
}

/// A persistent id: `('storage', <storage type>, key, location, numel)`.
fn persistent(pid: Item) -> Res<Item> {
    let Item::Tuple(parts) = pid else {
        return Err("a persistent id that is not a tuple".into());
    };
    match parts.as_slice() {
        [Item::Str(tag), Item::Global(Global::Storage(s)), Item::Str(key), Item::Str(_), Item::Int(n)]
            if &**tag == "storage" && *n >= 0 =>
        {
            Ok(Item::StorageId(*s, key.to_string(), *n as usize))
        }
        _ => Err("a persistent id other than a tensor storage".into()),
    }
}

fn ints(item: &Item, what: &str) -> Res<Vec<usize>> {
    match item {
        Item::Tuple(xs) => xs
            .iter()
            .map(|x| match x {
                Item::Int(i) if *i >= 0 => Ok(*i as usize),
                _ => Err(format!(
                    "a tensor's {what} holds something other than sizes"
                )),
            })
            .collect(),
        _ => Err(format!("a tensor's {what} is not a tuple")),
    }
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
/// backward_hooks[, metadata])`.
fn rebuild_tensor(args: &[Item]) -> Res<Item> {
    if !(6..=7).contains(&args.len()) {
        return Err(format!(
            "_rebuild_tensor_v2 with {} arguments (torch writes 6 or 7)",
            args.len()
        ));
    }
    let Item::StorageId(storage, key, numel) = &args[0] else {
        return Err("_rebuild_tensor_v2 of something other than a storage".into());
    };
    let Item::Int(offset) = args[1] else {
        return Err("a tensor's storage offset is not an int".into());
    };
    let size = ints(&args[2], "size")?;
    let stride = ints(&args[3], "stride")?;
    if size.len() != stride.len() || offset < 0 {
        return Err("a tensor whose size and stride disagree".into());
    }
    Ok(Item::Tensor(TensorRef {
        storage: *storage,
        key: key.clone(),
        numel: *numel,
        offset: offset as usize,
        size,
        stride,
    }))
}

fn refused_opcode(op: u8, at: usize) -> String {
    let name = match op {
        b'B' | b'C' | 0x8e | 0x96 => "bytes",
        0x8f..=0x91 => "a set",
        b'b' => "object state (BUILD)",
        b'i' | b'o' | 0x81 | 0x92 => "an object",
        b'P' => "a text persistent id",
        b'S' | b'T' | b'U' | b'V' => "an old-style string",
        b'I' | b'L' | b'F' => "a text number (protocol 0)",
        _ => "an unknown opcode",
    };
    format!(
        "opcode 0x{op:02x} ({name}) at byte {at} is not read: a Jacobian lens file holds only \
         tensors, numbers, strings, lists and dicts"
    )
}

/// A pickle being written (protocol 2, as torch.save writes it).
pub(crate) struct Writer {
    out: Vec<u8>,
}

/// What [`Writer::value`] writes.
pub(crate) enum Out<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(Vec<Out<'a>>),
    Dict(Vec<(Out<'a>, Out<'a>)>),
    /// A contiguous tensor over the whole of storage `key`.
    Tensor {
        storage: Storage,
        key: String,
        size: Vec<usize>,
    },
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer { out: vec![0x80, 2] }
    }

    /// `v`, then STOP: the finished pickle.
    pub(crate) fn finish(mut self, v: &Out) -> Vec<u8> {
        self.value(v);
        self.out.push(b'.');
        self.out
    }

    fn int(&mut self, i: i64) {
        if (0..256).contains(&i) {
            self.out.extend([b'K', i as u8]);
        } else if (0..65536).contains(&i) {
            self.out.push(b'M');
            self.out.extend((i as u16).to_le_bytes());
        } else if let Ok(i) = i32::try_from(i) {
            self.out.push(b'J');
            self.out.extend(i.to_le_bytes());
        } else {
            self.out.extend([0x8a, 8]);
            self.out.extend(i.to_le_bytes());
        }
    }

    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend(name.as_bytes());
        self.out.push(b'\n');
    }

    fn value(&mut self, v: &Out) {
        match v {
            Out::None => self.out.push(b'N'),
            Out::Bool(b) => self.out.push(if *b { 0x88 } else { 0x89 }),
            Out::Int(i) => self.int(*i),
            Out::Float(f) => {
                self.out.push(b'G');
                self.out.extend(f.to_be_bytes());
            }
            Out::Str(s) => self.str(s),
            Out::List(items) => {
                self.out.push(b']');
                if !items.is_empty() {
                    self.out.push(b'(');
                    items.iter().for_each(|i| self.value(i));
                    self.out.push(b'e');
                }
            }
            Out::Dict(entries) => {
                self.out.push(b'}');
                if !entries.is_empty() {
                    self.out.push(b'(');
                    for (k, v) in entries {
                        self.value(k);
                        self.value(v);
                    }
                    self.out.push(b'u');
                }
            }
            Out::Tensor { storage, key, size } => self.tensor(*storage, key, size),
        }
    }

    /// `_rebuild_tensor_v2(storage, 0, size, contiguous stride, False,
    /// OrderedDict())`, the storage a persistent id as torch writes it.
    fn tensor(&mut self, storage: Storage, key: &str, size: &[usize]) {
        let numel: usize = size.iter().product();
        let mut stride = vec![1usize; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * size[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        self.out.push(b'(');
        self.str("storage");
        self.global("torch", storage.class_name());
        self.str(key);
        self.str("cpu");
        self.int(numel as i64);
        self.out.push(b't');
        self.out.push(b'Q');
        self.int(0);
        for dims in [size, &stride[..]] {
            self.out.push(b'(');
            dims.iter().for_each(|&d| self.int(d as i64));
            self.out.push(b't');
        }
        self.out.push(0x89);
        self.global("collections", "OrderedDict");
        self.out.push(b')');
        self.out.push(b'R');
        self.out.push(b't');
        self.out.push(b'R');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_read_back() {
        let v = Out::Dict(vec![
            (Out::Str("J"), Out::Dict(vec![(Out::Int(0), Out::Int(-7))])),
            (
                Out::Str("xs"),
                Out::List(vec![
                    Out::Int(300),
                    Out::Int(70000),
                    Out::Int(1 << 40),
                    Out::Int(-(1 << 40)),
                    Out::Float(0.25),
                    Out::None,
                    Out::Bool(true),
                    Out::List(vec![]),
                ]),
            ),
        ]);
        let back = read(&Writer::new().finish(&v)).unwrap();
        assert_eq!(
            back,
            Value::Dict(vec![
                (
                    Value::Str("J".into()),
                    Value::Dict(vec![(Value::Int(0), Value::Int(-7))])
                ),
                (
                    Value::Str("xs".into()),
                    Value::List(vec![
                        Value::Int(300),
                        Value::Int(70000),
                        Value::Int(1 << 40),
                        Value::Int(-(1 << 40)),
                        Value::Float(0.25),
                        Value::None,
                        Value::Bool(true),
                        Value::List(vec![]),
                    ])
                ),
            ])
        );
    }

    #[test]
    fn a_tensor_reads_back_as_written() {
        let v = Out::Tensor {
            storage: Storage::Half,
            key: "3".into(),
            size: vec![2, 5],
        };
        let Value::Tensor(t) = read(&Writer::new().finish(&v)).unwrap() else {
            panic!("not a tensor")
        };
        assert_eq!(
            (t.storage, t.key.as_str(), t.numel, t.offset),
            (Storage::Half, "3", 10, 0)
        );
        assert_eq!((t.size, t.stride), (vec![2, 5], vec![5, 1]));
    }

    #[test]
    fn a_memoized_container_filled_later_is_the_same_container() {
        // {} memo 0, MARK 'a' 1 SETITEMS, then a list of memo 0 twice.
        let mut p = vec![
            0x80, 2, b']', b'(', b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a',
        ];
        p.extend([b'K', 1, b'u', b'h', 0, b'e', b'.']);
        let v = read(&p).unwrap();
        let d = Value::Dict(vec![(Value::Str("a".into()), Value::Int(1))]);
        assert_eq!(v, Value::List(vec![d.clone(), d]));
    }

    #[test]
    fn other_globals_and_opcodes_are_refused_by_name() {
        let mut p = vec![0x80, 2, b'c'];
        p.extend(b"os\nsystem\n");
        p.extend([b'X', 2, 0, 0, 0, b'l', b's', 0x85, b'R', b'.']);
        let e = read(&p).unwrap_err();
        assert!(e.contains("os.system"), "{e}");
        let e = read(&[0x80, 3, b'C', 1, b'x', b'.']).unwrap_err();
        assert!(e.contains("bytes"), "{e}");
        let e = read(&[0x80, 2, b'}', b'q']).unwrap_err();
        assert!(e.contains("ends inside"), "{e}");
    }

    #[test]
    fn a_container_inside_itself_is_refused() {
        // [] memo 0, append memo 0 to itself.
        let p = [0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.'];
        let e = read(&p).unwrap_err();
        assert!(e.contains("nested"), "{e}");
    }
}
