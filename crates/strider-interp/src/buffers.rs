//! Memory for a prepared plan: freed buffers are kept and handed out again, so a plan that runs many
//! times stops allocating (and page-faulting fresh pages) after its first run; and what is in use is
//! counted, so a run knows its peak working set.

/// Reusable `f32` buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    free: Vec<Vec<f32>>,
}

impl Buffers {
    /// A buffer of `len` elements whose contents are unspecified (stale values of an earlier use):
    /// the caller writes every element before reading it. A new buffer is reserved with
    /// `try_reserve`, so memory the system refuses is an error, not an abort.
    pub fn take(&mut self, len: usize) -> Result<Vec<f32>, std::collections::TryReserveError> {
        // Best fit: the smallest free buffer that is large enough.
        let fit = self.free.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity());
        let mut buffer = match fit.map(|(i, _)| i) {
            Some(i) => self.free.swap_remove(i),
            None => {
                let mut fresh = Vec::new();
                fresh.try_reserve_exact(len)?;
                fresh
            }
        };
        buffer.resize(len, 0.0);
        Ok(buffer)
    }

    /// Keeps a buffer for reuse.
    pub fn give(&mut self, buffer: Vec<f32>) {
        if buffer.capacity() > 0 {
            self.free.push(buffer);
        }
    }

    /// Elements held for reuse.
    pub fn retained_elements(&self) -> usize {
        self.free.iter().map(Vec::capacity).sum()
    }
}

/// Elements in use now and at most, for the peak working set of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// In use now.
    pub current: usize,
    /// The most in use at once.
    pub peak: usize,
}

impl Usage {
    /// `len` more elements are in use.
    pub fn hold(&mut self, len: usize) {
        self.current += len;
        self.peak = self.peak.max(self.current);
    }

    /// `len` elements are no longer in use.
    pub fn release(&mut self, len: usize) {
        self.current = self.current.saturating_sub(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_best_fit() {
        let mut b = Buffers::default();
        let x = b.take(100).unwrap();
        let y = b.take(50).unwrap();
        let x_ptr = x.as_ptr();
        b.give(x);
        b.give(y);
        // The best fit for 80 elements is the 100-element buffer.
        let z = b.take(80).unwrap();
        assert_eq!((z.as_ptr(), z.len()), (x_ptr, 80));
        b.give(z);
        assert_eq!(b.retained_elements(), 150);
    }

    #[test]
    fn memory_the_system_refuses_is_an_error() {
        let mut b = Buffers::default();
        assert!(b.take(usize::MAX / 8).is_err());
        assert_eq!(b.take(3).unwrap().len(), 3);
    }

    #[test]
    fn usage_tracks_the_peak() {
        let mut u = Usage::default();
        u.hold(100);
        u.hold(50);
        u.release(100);
        u.hold(20);
        assert_eq!(u, Usage { current: 70, peak: 150 });
    }
}
