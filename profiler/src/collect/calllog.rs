//! User space's side of the per-CPU call logs and of the target-set generation: both are
//! `BPF_F_MMAPABLE` arrays, read and written in place through shared mappings.
//!
//! Each CPU's log is a single-producer ring of `slots` 32-byte records (a [`SyscallEvent`],
//! followed by its [`Anatomy`] when the call was switched out, then by its [`StackIds`]
//! when its stacks were taken); its [`LogPos`]
//! holds the producer's `head` and our `tail` (records ever written / consumed). A drain
//! loads `head` (acquire: the records before it are complete), hands the records on in
//! place and stores `tail` (release: the programs reuse those slots only after we are done).

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::{Array, MapData};
use memmap2::{MmapOptions, MmapRaw};
use profiler_common::{
    LOG_HEAD_OFFSET, LOG_TAIL_OFFSET, LogPos, MIN_LOG_SLOTS, SyscallEvent, kind,
};

use crate::aggregate::{Slot, slot_width};

/// Records per CPU for a total log size of `bytes` over `cpus` CPUs: the largest power of
/// two that fits, at least [`MIN_LOG_SLOTS`].
pub fn slots_per_cpu(bytes: u32, cpus: u32) -> u32 {
    let per_cpu = u64::from(bytes) / size_of::<SyscallEvent>() as u64 / u64::from(cpus.max(1));
    let pow2 = if per_cpu == 0 {
        1
    } else {
        1u64 << (63 - per_cpu.leading_zeros())
    };
    pow2.clamp(u64::from(MIN_LOG_SLOTS), 1 << 30) as u32
}

/// Maps `len` bytes of the mmapable array `map`.
fn map_array(map: &MapData, len: usize) -> std::io::Result<MmapRaw> {
    MmapOptions::new()
        .len(len)
        .map_raw(map.fd().as_fd().as_raw_fd())
}

/// The call logs of every CPU, mapped.
pub struct CallLogs {
    records: MmapRaw,
    positions: MmapRaw,
    cpus: u32,
    slots: u32,
    /// Anatomy and stack slots drained so far (they follow their calls; not calls
    /// themselves).
    extra_slots: u64,
    /// Keeps the maps (and so the mappings' objects) open.
    _maps: (MapData, MapData),
}

impl std::fmt::Debug for CallLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLogs")
            .field("cpus", &self.cpus)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl CallLogs {
    /// Maps `LOG` (`cpus * slots` records) and `LOG_POS` (`cpus` positions).
    pub fn new(log: MapData, pos: MapData, cpus: u32, slots: u32) -> std::io::Result<Self> {
        let records = map_array(
            &log,
            cpus as usize * slots as usize * size_of::<SyscallEvent>(),
        )?;
        let positions = map_array(&pos, cpus as usize * size_of::<LogPos>())?;
        Ok(Self {
            records,
            positions,
            cpus,
            slots,
            extra_slots: 0,
            _maps: (log, pos),
        })
    }

    /// CPU `cpu`'s head or tail word.
    fn word(&self, cpu: u32, offset: usize) -> &AtomicU64 {
        let at = cpu as usize * size_of::<LogPos>() + offset;
        debug_assert!(at + 8 <= self.positions.len());
        // SAFETY: `at` is inside the mapping (cpu < cpus), 8-byte aligned (LogPos is 128
        // bytes, the offsets are 0 and 64, the mapping is page aligned), and the kernel
        // accesses the word only with aligned 8-byte loads and stores, so an atomic view of
        // it is sound. The mapping lives as long as `self`.
        unsafe { &*self.positions.as_ptr().add(at).cast::<AtomicU64>() }
    }

    /// Hands the slots written since the last drain to `each`, CPU by CPU, in pieces of at
    /// most `max` slots (and a piece of a call whose slots wrap around the end of the
    /// ring) that start at a call and end after a call's last slot, and frees each
    /// piece's slots once `each` has returned. The pieces are views of the mapping: no
    /// slot is copied. Returns how many calls.
    pub fn drain(&mut self, max: usize, mut each: impl FnMut(&[Slot])) -> usize {
        let slots = u64::from(self.slots);
        let (mut calls, mut extras) = (0, 0);
        for cpu in 0..self.cpus {
            let head = self.word(cpu, LOG_HEAD_OFFSET).load(Ordering::Acquire);
            let tail = self.word(cpu, LOG_TAIL_OFFSET).load(Ordering::Relaxed);
            // A well-behaved producer never runs ahead by more than `slots`; clamp anyway so
            // a corrupt head cannot make us loop for ever.
            let from = tail.max(head.saturating_sub(slots));
            let (n, extra) = drain_ring(self.ring(cpu), from, head, max, &mut each, |seq| {
                self.word(cpu, LOG_TAIL_OFFSET)
                    .store(seq, Ordering::Release)
            });
            calls += n;
            extras += extra;
        }
        self.extra_slots += extras;
        calls as usize
    }

    /// CPU `cpu`'s ring of slots.
    fn ring(&self, cpu: u32) -> Ring<'_> {
        let len = self.slots as usize;
        Ring {
            // SAFETY: `cpu < cpus`: the ring's `slots` slots of 32 bytes are inside the
            // mapping, which lives as long as the borrow of `self`.
            base: unsafe { self.records.as_ptr().cast::<Slot>().add(cpu as usize * len) },
            len,
            _mapping: std::marker::PhantomData,
        }
    }

    /// Calls written by the programs on all CPUs since loading (kept or not yet drained):
    /// the slots written less the anatomy and stack slots drained (exact once everything
    /// is drained).
    pub fn written(&self) -> u64 {
        let slots: u64 = (0..self.cpus)
            .map(|cpu| self.word(cpu, LOG_HEAD_OFFSET).load(Ordering::Acquire))
            .sum();
        slots.saturating_sub(self.extra_slots)
    }
}

/// One CPU's ring of call-log slots, in the shared mapping (or, in tests, in memory we
/// own). The programs write the slots past the head while we read, so the ring is never
/// borrowed whole: [`Ring::slots`] lends just the slots asked for.
#[derive(Clone, Copy)]
struct Ring<'a> {
    base: *const Slot,
    len: usize,
    _mapping: std::marker::PhantomData<&'a [Slot]>,
}

impl<'a> Ring<'a> {
    /// The `n` slots from slot `at`, which must lie between the consumer's tail and the
    /// head it loaded.
    fn slots(&self, at: usize, n: usize) -> &'a [Slot] {
        assert!(
            at + n <= self.len,
            "slots {at}+{n} past a ring of {}",
            self.len
        );
        // SAFETY: inside the ring (asserted), 8-byte aligned (page-aligned mapping), and a
        // slot is four plain words, so every bit pattern is valid. The programs write a
        // slot only while it is free (after our tail passed it and before their head
        // does); `drain_ring` asks only for slots between the tail and the head loaded
        // with acquire, which nothing writes until we publish a tail past them.
        unsafe { std::slice::from_raw_parts(self.base.add(at), n) }
    }
}

/// Hands `ring`'s records from `seq` to `head` (sequence numbers: slot `seq % len`) to
/// `each` in pieces of at most `max` slots that start at a call and end after a call's
/// last slot (a call whose slots wrap around the ring's end is copied out whole and
/// handed on alone; one that reaches past `head` is skipped), calling `publish` with the
/// sequence number after each piece once `each` has returned. Returns the calls and the
/// anatomy and stack slots handed on.
fn drain_ring(
    ring: Ring<'_>,
    mut seq: u64,
    head: u64,
    max: usize,
    mut each: impl FnMut(&[Slot]),
    mut publish: impl FnMut(u64),
) -> (u64, u64) {
    let slots = ring.len as u64;
    // A piece holds at least one whole call.
    let max = (max as u64).max(3);
    let (mut calls, mut extras) = (0, 0);
    while seq < head {
        let at = (seq % slots) as usize;
        // A piece ends at the head, after `max` slots, or at the end of the ring.
        let limit = (head - seq).min(max).min(slots - at as u64) as usize;
        let piece = ring.slots(at, limit);
        // Walk the piece call by call: it ends after the last whole call in it.
        let (mut i, mut n, mut extra) = (0, 0, 0);
        while i < limit {
            let w = &piece[i];
            // The usual slot: a call that never switched and has no stacks, one slot.
            if w[0] as u16 == 0 {
                // Once a cache line (two slots): ask for the line 1.5 KiB ahead, which the
                // writing CPU most likely still holds (the walk is the first to read it).
                #[cfg(target_arch = "x86_64")]
                if i % 2 == 0 {
                    prefetch(piece.as_ptr().wrapping_add(i + 48));
                }
                n += 1;
                i += 1;
                continue;
            }
            let width = slot_width(w);
            if i + width > limit {
                break;
            }
            if matches!(w[0] as u8, kind::CALL | kind::CALL_SWITCHED) {
                n += 1;
                extra += width as u64 - 1;
            }
            i += width;
        }
        if i > 0 {
            each(&piece[..i]);
            seq += i as u64;
        } else {
            // The call at `seq` does not fit: its slots wrap around the ring's end, or
            // reach past the head (cut by a clamp, or written by a broken producer).
            let width = slot_width(&piece[0]) as u64;
            if seq + width <= head {
                let mut call = [[0u64; 4]; 3];
                for (k, slot) in call.iter_mut().enumerate().take(width as usize) {
                    *slot = ring.slots(((seq + k as u64) % slots) as usize, 1)[0];
                }
                each(&call[..width as usize]);
                (n, extra) = (1, width - 1);
                seq += width;
            } else {
                seq = head;
            }
        }
        calls += n;
        extras += extra;
        publish(seq);
    }
    (calls, extras)
}

/// Hints the CPU to bring the cache line at `p` into L1 (any address: past the mapping
/// too).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(p: *const Slot) {
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe { std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0) };
}

/// The target-set generation, shared with the programs (their `.bss`).
pub struct Generation {
    map: Array<MapData, u64>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation").finish_non_exhaustive()
    }
}

impl Generation {
    /// Wraps the programs' `.bss` map, which holds only the generation.
    pub fn new(map: Array<MapData, u64>) -> Self {
        Self { map }
    }

    /// Announces a change of the target set: every CPU re-identifies its next task.
    ///
    /// The programs bump the word atomically, but user space can only rewrite it, so a
    /// bump of theirs between our read and write would be lost. Adding 2^32 makes the new
    /// value one never seen before (unless 2^32 bumps race with us), so no per-CPU memo
    /// stamped with an older value can match it.
    pub fn bump(&mut self) -> Result<(), aya::maps::MapError> {
        let g = self.map.get(&0, 0)?;
        self.map.set(0, g.wrapping_add(1 << 32), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Batch, Event, StackRef, anatomy_slot, call_slot, stack_slot};
    use profiler_common::{Anatomy, StackIds, flag};

    /// The slots of a call: the call, its anatomy when switched, its stack ids when taken.
    fn call_slots(i: u32, switched: bool, stack: bool) -> (Vec<Slot>, Event) {
        let call = SyscallEvent {
            kind: if switched {
                kind::CALL_SWITCHED
            } else {
                kind::CALL
            },
            flags: if stack { flag::STACK } else { 0 },
            nr: (i % 7) as u16,
            cgroup: i ^ 0xdead_0000,
            duration_ns: 100 + u64::from(i),
            ret: -(i64::from(i) % 3),
            tgid: 1000 + i % 3,
            tid: 2000 + i,
        };
        let anatomy = Anatomy {
            kind: kind::ANATOMY,
            voluntary: i % 4 + 1,
            involuntary: i % 2,
            kstack: -(i as i32),
            runq_ns: u64::from(i) * 3,
            blocked_ns: u64::from(i) * 5,
            ..Anatomy::default()
        };
        let ids = StackIds {
            user: i as i32,
            kernel: -(i as i32) - 1,
            ..StackIds::default()
        };
        let mut slots = vec![call_slot(&call)];
        if switched {
            slots.push(anatomy_slot(&anatomy));
        }
        if stack {
            slots.push(stack_slot(&ids));
        }
        let anatomy = if switched {
            anatomy
        } else {
            Anatomy::default()
        };
        let event = if stack {
            Event::CallStack(
                call,
                anatomy,
                StackRef {
                    user: ids.user,
                    kernel: ids.kernel,
                },
            )
        } else {
            Event::Call(call, anatomy)
        };
        (slots, event)
    }

    proptest::proptest! {
        /// Whatever the ring's size, the records' kinds, where the ring wraps and the
        /// largest piece, the pieces hand on every call once, in order, with its anatomy
        /// and stacks; the counts add up; and the tail is published after each piece,
        /// ending at the head.
        #[test]
        fn pieces_hand_on_every_call_in_order(
            len in 3usize..24,
            start in 0u64..100,
            kinds in proptest::collection::vec(0u8..4, 0..40),
            max in 1usize..10,
        ) {
            let mut ring = vec![[0u64; 4]; len];
            let (mut seq, mut expected, mut extras) = (start, Vec::new(), 0);
            for (i, k) in kinds.iter().enumerate() {
                let (slots, event) = call_slots(i as u32, k & 1 != 0, k & 2 != 0);
                if seq + slots.len() as u64 - start > len as u64 {
                    break;
                }
                for w in &slots {
                    ring[(seq % len as u64) as usize] = *w;
                    seq += 1;
                }
                extras += slots.len() as u64 - 1;
                expected.push(event);
            }
            let head = seq;
            let view = Ring {
                base: ring.as_ptr(),
                len,
                _mapping: std::marker::PhantomData,
            };
            let (mut got, mut published) = (Vec::new(), vec![start]);
            let (calls, extra) = drain_ring(
                view,
                start,
                head,
                max,
                |piece| got.extend(Batch::Slots(piece).events()),
                |tail| published.push(tail),
            );
            proptest::prop_assert_eq!(&got, &expected);
            proptest::prop_assert_eq!(calls, expected.len() as u64);
            proptest::prop_assert_eq!(extra, extras);
            proptest::prop_assert!(published.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert_eq!(*published.last().unwrap(), head);
        }
    }

    #[test]
    fn a_call_cut_by_the_head_is_skipped() {
        // A switched call whose anatomy slot is past the head (a broken producer).
        let (slots, _) = call_slots(1, true, false);
        let ring = [slots[0], [0; 4], [0; 4], [0; 4]];
        let view = Ring {
            base: ring.as_ptr(),
            len: ring.len(),
            _mapping: std::marker::PhantomData,
        };
        let (mut pieces, mut tail) = (0, 0);
        let (calls, _) = drain_ring(view, 0, 1, 8, |_| pieces += 1, |t| tail = t);
        assert_eq!((calls, pieces, tail), (0, 0, 1));
    }

    #[test]
    fn slots_are_powers_of_two_within_bounds() {
        // 8 MiB over 2 CPUs: 4 MiB each, 131072 records of 32 bytes.
        assert_eq!(slots_per_cpu(8 << 20, 2), 131_072);
        // Not a power of two per CPU: rounded down.
        assert_eq!(slots_per_cpu(8 << 20, 3), 65_536);
        // Tiny buffers still get the minimum.
        assert_eq!(slots_per_cpu(4096, 64), MIN_LOG_SLOTS);
        assert_eq!(slots_per_cpu(0, 0), MIN_LOG_SLOTS);
        for cpus in 1..300 {
            let s = slots_per_cpu(8 << 20, cpus);
            assert!(s.is_power_of_two(), "{cpus}: {s}");
        }
    }
}
