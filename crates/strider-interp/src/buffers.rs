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
    /// the caller writes every element before reading it.
    pub fn take(&mut self, len: usize) -> Vec<f32> {
        // Best fit: the smallest free buffer that is large enough.
        let fit = self.free.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity());
        match fit.map(|(i, _)| i) {
            Some(i) => {
                let mut buffer = self.free.swap_remove(i);
                buffer.resize(len, 0.0);
                buffer
            }
            None => vec![0.0; len],
        }
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
        let x = b.take(100);
        let y = b.take(50);
        let x_ptr = x.as_ptr();
        b.give(x);
        b.give(y);
        // The best fit for 80 elements is the 100-element buffer.
        let z = b.take(80);
        assert_eq!((z.as_ptr(), z.len()), (x_ptr, 80));
        b.give(z);
        assert_eq!(b.retained_elements(), 150);
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
