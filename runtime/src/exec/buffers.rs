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

/// A 64-byte-aligned, zero-initialised byte buffer allocated once per executable.
pub struct Arena {
    words: Vec<Align64>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl Arena {
    /// An arena of `len` bytes.
    pub fn new(len: usize) -> Arena {
        Arena {
            words: vec![Align64([0; 64]); len.div_ceil(64)],
            len,
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
}
