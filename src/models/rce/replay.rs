//! RCE's replay: n-step transitions `(s_t, a_t, s_{t+1}, s_{t+k})`.

use crate::models::cartpole::SplitMix64;
use crate::{GraphError, Result};

/// One n-step transition `(s_t, a_t, s_{t+1}, s_future)` (see [`FutureSampling`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// `s_t`
    pub s: [f32; 2],
    /// `a_t`
    pub a: [f32; 2],
    /// `s_{t+1}`
    pub next: [f32; 2],
    /// The future state: `s_{t+n−1}` of the window, or `s_{t+n}` clamped to the episode.
    pub nth: [f32; 2],
}

/// Which replay state serves as the future state of an n-step transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutureSampling {
    /// As google-research `rce_agent.py` with tf_agents' replay: a window of `n` consecutive
    /// frames (the first not an episode's final state), the future state is the window's last
    /// frame `s_{t+n−1}`, and the window may run past the episode's final state into the next
    /// episode's first states.
    AsOriginal,
    /// `s_{t+n}`, clamped to the episode's final state (MODELS.md's `s_{t+n}`).
    ClampedToEpisode,
}

/// One stored frame: a state and the action taken there, or an episode's final state.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Frame {
    s: [f32; 2],
    a: [f32; 2],
    /// The episode's final state (no action follows; a transition never starts here).
    boundary: bool,
}

/// The replay as tf_agents stores it: the stream of frames `(s_t, a_t)` in collection order,
/// each episode closed by a boundary frame holding its final state, in a FIFO of at most
/// `capacity` frames. Transitions are sampled uniformly (with replacement) among the windows
/// of `n` frames that lie inside the buffer and do not start on a boundary.
#[derive(Clone, Debug)]
pub struct FrameReplay {
    frames: std::collections::VecDeque<Frame>,
    capacity: usize,
    n: usize,
    future: FutureSampling,
}

impl FrameReplay {
    /// An empty replay of at most `capacity` frames for `n`-step windows (`n ≥ 2`,
    /// `capacity ≥ n`).
    pub fn new(capacity: usize, n: usize, future: FutureSampling) -> Result<FrameReplay> {
        if n < 2 || capacity < n {
            return Err(GraphError::invalid(format!(
                "rce::FrameReplay::new: capacity {capacity}, n = {n}; expected n >= 2 and \
                 capacity >= n"
            )));
        }
        Ok(FrameReplay {
            frames: std::collections::VecDeque::new(),
            capacity,
            n,
            future,
        })
    }

    /// Stored frames (boundaries included).
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    fn push_frame(&mut self, f: Frame) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back(f);
    }

    /// Record state `s` and the action `a` taken there.
    pub fn push_step(&mut self, s: [f32; 2], a: [f32; 2]) {
        self.push_frame(Frame {
            s,
            a,
            boundary: false,
        });
    }

    /// Record an episode's final state.
    pub fn push_final(&mut self, s: [f32; 2]) {
        self.push_frame(Frame {
            s,
            a: [0.0; 2],
            boundary: true,
        });
    }

    /// The transition starting at stored frame `i`, if its window is complete and valid.
    fn transition_at(&self, i: usize) -> Option<Transition> {
        let f = self.frames.get(i)?;
        if f.boundary || i + self.n > self.frames.len() {
            return None;
        }
        let next = self.frames[i + 1].s;
        let nth = match self.future {
            FutureSampling::AsOriginal => self.frames[i + self.n - 1].s,
            FutureSampling::ClampedToEpisode => {
                let mut j = i + 1;
                while j < i + self.n && !self.frames[j].boundary {
                    j += 1;
                }
                if j == i + self.n {
                    // s_{t+n} needs frame i + n, which must be stored.
                    self.frames.get(i + self.n)?.s
                } else {
                    self.frames[j].s
                }
            }
        };
        Some(Transition {
            s: f.s,
            a: f.a,
            next,
            nth,
        })
    }

    /// Whether any complete transition is stored. Checking the first `n + 2` starts suffices:
    /// two adjacent frames are never both boundaries (episodes have at least one step), so
    /// when none of them is valid the buffer is too short for any window.
    pub fn has_transition(&self) -> bool {
        (0..self.frames.len().min(self.n + 2)).any(|i| self.transition_at(i).is_some())
    }

    /// `k` transitions drawn uniformly (with replacement) among the valid windows, by
    /// rejection as tf_agents' sample-then-filter does; errors when none is stored.
    pub fn sample(&self, rng: &mut SplitMix64, k: usize) -> Result<Vec<Transition>> {
        let len = self.frames.len();
        if !self.has_transition() {
            return Err(GraphError::invalid(
                "rce::FrameReplay::sample: no complete transition is stored",
            ));
        }
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            if let Some(t) = self.transition_at(rng.below(len)) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two episodes of 5 steps with states `10·episode + t`: the original's windows read the
    /// next episode, the clamped ones stop at the final state, and no window starts on a
    /// boundary.
    #[test]
    fn frame_replay_windows() {
        let fill = |future| {
            let mut rb = FrameReplay::new(100, 4, future).unwrap();
            for ep in 0..2 {
                for t in 0..5 {
                    rb.push_step([(10 * ep + t) as f32, 0.0], [t as f32 / 10.0, 0.0]);
                }
                rb.push_final([(10 * ep + 5) as f32, 0.0]);
            }
            rb
        };
        let orig = fill(FutureSampling::AsOriginal);
        assert_eq!(orig.frames(), 12);
        let t = |rb: &FrameReplay, i| rb.transition_at(i).map(|t| (t.s[0], t.next[0], t.nth[0]));
        // Window of 4 frames: the future state is frame i + 3 (s_{t+n-1}).
        assert_eq!(t(&orig, 0), Some((0.0, 1.0, 3.0)));
        assert_eq!(t(&orig, 2), Some((2.0, 3.0, 5.0)));
        // Crosses the boundary into the next episode's start states.
        assert_eq!(t(&orig, 3), Some((3.0, 4.0, 10.0)));
        assert_eq!(t(&orig, 4), Some((4.0, 5.0, 11.0)));
        assert_eq!(t(&orig, 5), None, "a boundary frame starts no transition");
        assert_eq!(t(&orig, 8), Some((12.0, 13.0, 15.0)));
        assert_eq!(t(&orig, 9), None, "incomplete window");
        let clamped = fill(FutureSampling::ClampedToEpisode);
        assert_eq!(t(&clamped, 0), Some((0.0, 1.0, 4.0)));
        assert_eq!(t(&clamped, 3), Some((3.0, 4.0, 5.0)));
        assert_eq!(t(&clamped, 4), Some((4.0, 5.0, 5.0)));
        assert_eq!(t(&clamped, 8), Some((12.0, 13.0, 15.0)));
        let mut rng = SplitMix64::new(3);
        let drawn = orig.sample(&mut rng, 500).unwrap();
        assert!(drawn.iter().all(|t| t.s[0] != 5.0 && t.s[0] != 15.0));
        let starts: std::collections::BTreeSet<u32> = drawn.iter().map(|t| t.s[0] as u32).collect();
        assert_eq!(
            starts.into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 10, 11, 12]
        );
        // FIFO: with capacity 6 only the second episode remains.
        let mut small = FrameReplay::new(6, 4, FutureSampling::AsOriginal).unwrap();
        assert!(!small.has_transition() && small.sample(&mut rng, 1).is_err());
        for f in 0..12 {
            if f % 6 == 5 {
                small.push_final([f as f32, 0.0]);
            } else {
                small.push_step([f as f32, 0.0], [0.0; 2]);
            }
        }
        assert_eq!(small.frames(), 6);
        assert!(
            small
                .sample(&mut rng, 50)
                .unwrap()
                .iter()
                .all(|t| t.s[0] >= 6.0)
        );
        assert!(FrameReplay::new(100, 1, FutureSampling::AsOriginal).is_err());
        assert!(FrameReplay::new(3, 4, FutureSampling::AsOriginal).is_err());
    }
}
