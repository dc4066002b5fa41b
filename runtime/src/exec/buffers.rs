//! Buffer declarations and the arena that holds an executable's temporaries.

use flumen_frontend::DType;

/// Where a buffer lives during a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    /// A temporary at a byte offset of the arena (planned by liveness).
    Arena {
        /// Byte offset, 64-byte aligned.
        offset: usize,
    },
    /// The `i`-th feed's data (read only).
    Feed(usize),
    /// The `i`-th variable's data in the session state (written only by assign steps).
    Variable(usize),
    /// The `i`-th constant of the executable (read only).
    Constant(usize),
    /// The same memory as another buffer (a reshape of it).
    Alias(super::BufId),
}

/// One buffer: element type, element count, storage.
#[derive(Clone, Debug, PartialEq)]
pub struct BufferDecl {
    /// Element type.
    pub dtype: DType,
    /// Number of elements.
    pub numel: usize,
    /// Where it lives.
    pub storage: Storage,
}

impl BufferDecl {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.numel * self.dtype.size_bytes()
    }
}

/// A 64-byte-aligned, zero-initialised byte buffer allocated once per executable, with the
/// pointer tables a run fills (kept here so that steady-state runs reuse them).
pub struct Arena {
    words: Vec<Align64>,
    len: usize,
    tables: RunTables,
}

/// The per-run pointer tables of [`Executable::run`](super::Executable::run): filled at the
/// start of every run, so they keep their capacity and a steady-state run allocates none.
/// The pointers are meaningful only during the run that wrote them.
#[derive(Default)]
pub(crate) struct RunTables {
    /// Feed data, by feed index.
    pub feeds: Vec<*const u8>,
    /// Variable data, by variable index.
    pub variables: Vec<*mut u8>,
    /// Constant data, by constant index.
    pub constants: Vec<*const u8>,
    /// Every buffer's base pointer.
    pub ptrs: Vec<*mut u8>,
    /// Kernel argument scratch.
    pub args: Vec<*mut u8>,
}

// SAFETY: the tables are only dereferenced during a run, under `&mut` of the executable
// that owns them; between runs they are stale numbers that are cleared before use.
unsafe impl Send for RunTables {}
unsafe impl Sync for RunTables {}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl Arena {
    /// An arena of `len` bytes.
    pub fn new(len: usize) -> Arena {
        Arena {
            words: vec![Align64([0; 64]); len.div_ceil(64)],
            len,
            tables: RunTables::default(),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Base pointer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr() as *mut u8
    }

    /// The base pointer and the run's pointer tables.
    pub(crate) fn parts(&mut self) -> (*mut u8, &mut RunTables) {
        (self.words.as_mut_ptr() as *mut u8, &mut self.tables)
    }
}
