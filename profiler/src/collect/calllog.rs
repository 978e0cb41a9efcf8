//! User space's side of the per-CPU call logs and of the target-set generation: both are
//! `BPF_F_MMAPABLE` arrays, read and written in place through shared mappings.
//!
//! Each CPU's log is a single-producer ring of `slots` 32-byte records (a [`SyscallEvent`],
//! followed by its [`Anatomy`] when the call was switched out, then by its [`StackIds`]
//! when its stacks were taken); its [`LogPos`]
//! holds the producer's `head` and our `tail` (records ever written / consumed). A drain
//! loads `head` (acquire: the records before it are complete), copies the records out and
//! stores `tail` (release: the programs reuse those slots only after we are done).

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use aya::maps::{Array, MapData};
use memmap2::{MmapOptions, MmapRaw};
use profiler_common::{
    Anatomy, LOG_HEAD_OFFSET, LOG_TAIL_OFFSET, LogPos, MIN_LOG_SLOTS, StackIds, SyscallEvent, flag,
    kind,
};

use crate::aggregate::{Event, StackRef};

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

    /// Appends up to `max` calls written since the last drain to `out`, CPU by CPU, and
    /// frees their slots. Returns how many calls: fewer than `max` when the logs are empty.
    pub fn drain(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let before = out.len();
        let stop = before + max;
        let mask = u64::from(self.slots) - 1;
        for cpu in 0..self.cpus {
            if out.len() >= stop {
                break;
            }
            let head = self.word(cpu, LOG_HEAD_OFFSET).load(Ordering::Acquire);
            let tail = self.word(cpu, LOG_TAIL_OFFSET).load(Ordering::Relaxed);
            // A well-behaved producer never runs ahead by more than `slots`; clamp anyway so
            // a corrupt head cannot make us loop for ever.
            let from = tail.max(head.saturating_sub(u64::from(self.slots)));
            let slot = |seq: u64| -> *const u8 {
                let index = u64::from(cpu) * u64::from(self.slots) + (seq & mask);
                // SAFETY: `index < cpus * slots`: the slot is inside the mapping.
                unsafe {
                    self.records
                        .as_ptr()
                        .add(index as usize * size_of::<SyscallEvent>())
                }
            };
            // The slot is inside the mapping; the producer finished writing it before
            // publishing `head` (acquire above) and does not touch it again until we
            // publish a tail past it, so nothing writes it while we read: a plain read (which
            // the compiler may widen) is enough, no volatile one (which it copies field by
            // field). Slots are 32-byte aligned in a page-aligned mapping;
            // `SyscallEvent` and `Anatomy` are 32-byte repr(C) structs of integers
            // (asserted in profiler-common), so every bit pattern is valid.
            let call = |seq| {
                // SAFETY: see above.
                unsafe { std::ptr::read(slot(seq).cast::<SyscallEvent>()) }
            };
            let anatomy = |seq| {
                // SAFETY: see above.
                unsafe { std::ptr::read(slot(seq).cast::<Anatomy>()) }
            };
            let stack = |seq| {
                // SAFETY: see above (`StackIds` is 32 bytes of integers too).
                unsafe { std::ptr::read(slot(seq).cast::<StackIds>()) }
            };
            let mut seq = from;
            while seq < head && out.len() < stop {
                let ev = call(seq);
                seq += 1;
                // The usual record: a call that neither left its CPU nor took stacks.
                if ev.kind == kind::CALL && ev.flags & flag::STACK == 0 {
                    out.push(Event::call(ev));
                    continue;
                }
                let switched = match ev.kind {
                    kind::CALL => false,
                    kind::CALL_SWITCHED => true,
                    // An anatomy or stack slot without its call (the clamp above cut
                    // between them), or a kind this build does not know: skipped.
                    _ => continue,
                };
                // The anatomy and stack slots were published with their call, after it.
                let has_stack = ev.flags & flag::STACK != 0;
                let extra = u64::from(switched) + u64::from(has_stack);
                if head - seq < extra {
                    continue;
                }
                let a = if switched {
                    anatomy(seq)
                } else {
                    Anatomy::default()
                };
                let s = has_stack.then(|| stack(seq + u64::from(switched)));
                seq += extra;
                self.extra_slots += extra;
                out.push(match s {
                    Some(s) if s.kind == kind::STACK => Event::CallStack(
                        ev,
                        a,
                        StackRef {
                            user: s.user,
                            kernel: s.kernel,
                        },
                    ),
                    _ => Event::Call(ev, a),
                });
            }
            self.word(cpu, LOG_TAIL_OFFSET)
                .store(seq.max(tail), Ordering::Release);
        }
        out.len() - before
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
