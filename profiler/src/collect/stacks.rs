//! `--stacks`: turns the stack ids of drained calls into symbolized frames and folds the
//! calls into a [`StackTable`]. Its only job is resolution; it draws nothing.
//!
//! - Addresses: the kernel's stack-trace map (`STACKS`), read once per id (an id always
//!   names the same stack: entries are never deleted), or, for a stack whose bucket held
//!   another, its frames sent in the ring buffer under an id of its own ([`InlineStack`]),
//!   kept until a call names them and through the drain that did.
//! - User frames: each address is placed in the process's mappings (`/proc/PID/maps`, read
//!   at the programs' exec notice, at the exec's return and when the process is first seen,
//!   so a process that exits before its stacks are resolved keeps its mappings; read again
//!   once per drain when an address falls outside them), then symbolized with
//!   blazesym from the mapped ELF file (symbols and DWARF) by file offset: the cache is keyed
//!   by (file, offset), shared by every process that maps the file, and needs no live
//!   process. A process gone before its mappings could be read gets
//!   `[unresolved: process exited]`.
//! - Kernel frames: blazesym's kernel source (`/proc/kallsyms`), cached by address.
//!
//! Everything is bounded: the id cache by the map's size, the symbol caches and the
//! per-process state by caps (cleared when reached; entries are re-read on demand), the
//! table by its own cap on distinct stacks.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use aya::maps::{MapData, StackTraceMap};
use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Kernel, Source},
};
use profiler_common::SyscallEvent;

use super::procinfo::read_comm;
use crate::aggregate::{
    Batch, Event, StackRef,
    stacks::{Frames, SHORT_STACK, StackSet, StackTable},
};

/// Most (file, offset) and kernel symbols cached before the caches are cleared.
const MAX_SYMBOLS: usize = 1 << 20;
/// Most processes whose mappings are kept at once.
const MAX_PROCS: usize = 1 << 16;
/// Most calls of processes whose name is not yet known (held until their exit record).
const MAX_PENDING: usize = 1 << 16;

/// One mapping of a process: `[start, end)` maps `file` from `offset`.
#[derive(Clone, Debug)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    what: Mapped,
}

/// What a mapping holds.
#[derive(Clone, Debug)]
enum Mapped {
    /// A file, by the path to open it with.
    File(Arc<Path>),
    /// A file deleted since it was mapped.
    Deleted(Arc<str>),
    /// The vDSO.
    Vdso,
    /// Anything else: anonymous memory (JIT code), the heap, a stack.
    Anon,
}

/// A call waiting for its process's name: (user, kernel, nr, ns).
type Waiting = (u32, u32, u32, u64);

/// What is known of a process.
#[derive(Debug, Default)]
struct Proc {
    /// Its mappings, sorted; `None` when they could not be read (it had exited).
    maps: Option<Arc<[Mapping]>>,
    /// Its name's id in the table, once known.
    comm: Option<u32>,
    /// User stack id → frames id in the table.
    stacks: HashMap<i32, u32>,
    /// Calls waiting for the name.
    pending: Vec<Waiting>,
    /// Whether its mappings were read in this drain (a miss re-reads them once).
    refreshed: bool,
}

/// Resolves and folds the stacks of drained calls.
pub struct Stacks {
    map: StackTraceMap<MapData>,
    symbolizer: Symbolizer,
    table: StackTable,
    /// Stack id → addresses, innermost first.
    traces: HashMap<u32, Arc<[u64]>>,
    procs: HashMap<u32, Proc>,
    /// Processes whose exit record was seen: dropped at the next drain (the slow-call log
    /// of this one may still resolve their stacks).
    retiring: Vec<u32>,
    /// Kernel stack id → frames id.
    kernel: HashMap<i32, u32>,
    user_syms: HashMap<(Arc<Path>, u64), Arc<str>>,
    kernel_syms: HashMap<u64, Arc<str>>,
    pending: usize,
    exec_nrs: [u32; 2],
    /// Inline stacks no call has named yet, by id.
    inline: HashMap<i32, Arc<[u64]>>,
    /// Inline stacks named in this drain (the slow-call log resolves them again after it).
    inline_used: HashMap<i32, Arc<[u64]>>,
}

/// A stack whose bucket in the stack-trace map held another stack, sent in the ring buffer
/// (`profiler_common::StackFrames`) under an id at or above
/// `profiler_common::INLINE_STACK_BASE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineStack {
    /// The id the calls' stack ids carry.
    pub id: i32,
    /// Instruction pointers, innermost first.
    pub ips: Arc<[u64]>,
}

/// Most inline stacks waiting for their call before they are all forgotten (only a call
/// switched out more than once can leave one unnamed: its earlier kernel stacks).
const MAX_INLINE: usize = 1 << 16;

impl std::fmt::Debug for Stacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stacks")
            .field("traces", &self.traces.len())
            .field("procs", &self.procs.len())
            .finish_non_exhaustive()
    }
}

impl Stacks {
    /// Reads stacks from `map`, folding them into a table of at most `max_stacks` keys.
    pub fn new(map: StackTraceMap<MapData>, max_stacks: usize) -> Self {
        Stacks {
            map,
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
            table: StackTable::new(max_stacks),
            traces: HashMap::new(),
            procs: HashMap::new(),
            retiring: Vec::new(),
            kernel: HashMap::new(),
            user_syms: HashMap::new(),
            kernel_syms: HashMap::new(),
            pending: 0,
            inline: HashMap::new(),
            inline_used: HashMap::new(),
            exec_nrs: ["execve", "execveat"]
                .map(|n| crate::syscalls::number(n).unwrap_or(u32::MAX)),
        }
    }

    /// Starts a drain: forgets the processes that exited before it.
    pub fn begin_drain(&mut self) {
        self.inline_used.clear();
        for p in self.procs.values_mut() {
            p.refreshed = false;
        }
        for tgid in std::mem::take(&mut self.retiring) {
            if let Some(p) = self.procs.remove(&tgid) {
                self.flush_pending(p);
            }
        }
    }

    /// Takes the stacks sent in the ring buffer that the next batches' calls may name.
    pub fn add_inline(&mut self, stacks: &[InlineStack]) {
        if self.inline.len() + stacks.len() > MAX_INLINE {
            self.inline.clear();
        }
        for s in stacks {
            self.inline.insert(s.id, s.ips.clone());
        }
    }

    /// Folds one batch of drained records: every call makes its process known (its
    /// mappings read now), every call with stacks is resolved and counted, an exec drops
    /// what was known of the old image, an exit record names calls waiting for a name.
    pub fn observe(&mut self, batch: Batch<'_>) {
        for ev in batch.events() {
            match ev {
                Event::Call(call, _) => {
                    self.proc(call.tgid);
                    self.after_call(&call);
                }
                Event::CallStack(call, _, ids) => {
                    let (user, kernel) = self.resolve(call.tgid, ids);
                    let nr = u32::from(call.nr);
                    let room = self.pending < MAX_PENDING;
                    let p = self.proc(call.tgid);
                    match p.comm {
                        Some(comm) => self.table.add(comm, user, kernel, nr, call.duration_ns),
                        None if room => {
                            p.pending.push((user, kernel, nr, call.duration_ns));
                            self.pending += 1;
                        }
                        None => {
                            let comm = self.table.comm_id("?");
                            self.table.add(comm, user, kernel, nr, call.duration_ns);
                        }
                    }
                    self.after_call(&call);
                }
                Event::Exit(exit) => {
                    if let Some(p) = self.procs.get_mut(&exit.tgid) {
                        let pending = std::mem::take(&mut p.pending);
                        let comm = match p.comm {
                            Some(c) => c,
                            None => {
                                let name = crate::aggregate::comm_name(&exit.comm);
                                let c = self.table.comm_id(&name);
                                if let Some(p) = self.procs.get_mut(&exit.tgid) {
                                    p.comm = Some(c);
                                }
                                c
                            }
                        };
                        self.add_pending(Some(comm), pending);
                    }
                    self.retiring.push(exit.tgid);
                }
            }
        }
    }

    /// A completed exec replaced the image: see [`Stacks::exec`].
    fn after_call(&mut self, call: &SyscallEvent) {
        let nr = u32::from(call.nr);
        if call.ret == 0 && self.exec_nrs.contains(&nr) {
            self.exec(call.tgid);
        }
    }

    /// Process `tgid` exec'd (the programs say so at once, and its exec call's return
    /// says so again): its mappings and name are read now, while it lives, and the stacks
    /// resolved for its old image are forgotten. A process already gone keeps what was
    /// read (its last image's, most likely: the read at the exec notice).
    pub fn exec(&mut self, tgid: u32) {
        let Some(maps) = read_maps(tgid) else {
            return;
        };
        let comm = read_comm(tgid).map(|c| self.table.comm_id(&c));
        let p = self.proc(tgid);
        p.maps = Some(maps);
        p.stacks.clear();
        if comm.is_some() {
            p.comm = comm;
        }
        p.refreshed = true;
    }

    /// Adds the calls a process held for its name, under its name or `?`.
    fn flush_pending(&mut self, p: Proc) {
        self.add_pending(p.comm, p.pending);
    }

    fn add_pending(&mut self, comm: Option<u32>, pending: Vec<Waiting>) {
        if pending.is_empty() {
            return;
        }
        self.pending -= pending.len();
        let comm = comm.unwrap_or_else(|| self.table.comm_id("?"));
        for (u, k, nr, ns) in pending {
            self.table.add(comm, u, k, nr, ns);
        }
    }

    /// What is known of `tgid`, read from /proc the first time.
    fn proc(&mut self, tgid: u32) -> &mut Proc {
        if !self.procs.contains_key(&tgid) {
            if self.procs.len() >= MAX_PROCS {
                let all: Vec<u32> = self.procs.keys().copied().collect();
                for t in all {
                    if let Some(p) = self.procs.remove(&t) {
                        self.flush_pending(p);
                    }
                }
            }
            let comm = read_comm(tgid).map(|c| self.table.comm_id(&c));
            self.procs.insert(
                tgid,
                Proc {
                    maps: read_maps(tgid),
                    comm,
                    refreshed: true,
                    ..Proc::default()
                },
            );
        }
        self.procs.get_mut(&tgid).expect("inserted above")
    }

    /// The frames ids of a call's user and kernel stacks.
    pub fn resolve(&mut self, tgid: u32, ids: StackRef) -> (u32, u32) {
        (
            self.user_stack(tgid, ids.user),
            self.kernel_stack(ids.kernel),
        )
    }

    /// The frames of `id` (from [`Stacks::resolve`]).
    pub fn frames(&self, id: u32) -> Frames {
        self.table.frames(id).unwrap_or_else(|| Arc::from([]))
    }

    /// Everything folded so far.
    pub fn summary(&self) -> StackSet {
        self.table.summary()
    }

    /// Everything folded since the last take, leaving the table empty (the frames and
    /// names stay known).
    pub fn take(&mut self) -> StackSet {
        self.table.take()
    }

    /// Adds the calls still waiting for their process's name, as `?` (the end of a
    /// recording: no exit record will come).
    pub fn finish(&mut self) {
        let waiting: Vec<(Option<u32>, Vec<Waiting>)> = self
            .procs
            .values_mut()
            .filter(|p| !p.pending.is_empty())
            .map(|p| (p.comm, std::mem::take(&mut p.pending)))
            .collect();
        for (comm, pending) in waiting {
            self.add_pending(comm, pending);
        }
    }

    fn trace(&mut self, id: i32) -> Option<Arc<[u64]>> {
        if is_inline(id) {
            if let Some(t) = self.inline.remove(&id) {
                self.inline_used.insert(id, t.clone());
                return Some(t);
            }
            return self.inline_used.get(&id).cloned();
        }
        let id = u32::try_from(id).ok()?;
        if let Some(t) = self.traces.get(&id) {
            return Some(t.clone());
        }
        let t: Arc<[u64]> = match self.map.get(&id, 0) {
            Ok(t) => t.frames().iter().map(|f| f.ip).collect(),
            Err(e) => {
                log::debug!("stack {id} not in the map: {e}");
                return None;
            }
        };
        self.traces.insert(id, t.clone());
        Some(t)
    }

    fn note(&mut self, text: &str) -> u32 {
        self.table.frames_id(Arc::from([Arc::from(text)]))
    }

    fn user_stack(&mut self, tgid: u32, id: i32) -> u32 {
        if id < 0 {
            let why = lost(id, "user");
            return self.note(&why);
        }
        if let Some(&f) = self.procs.get(&tgid).and_then(|p| p.stacks.get(&id)) {
            return f;
        }
        let Some(addrs) = self.trace(id) else {
            return self.note(&missing(id, "user"));
        };
        let mut maps = self.proc(tgid).maps.clone();
        if let Some(m) = &maps
            && !self.procs.get(&tgid).is_some_and(|p| p.refreshed)
            && addrs.iter().any(|&a| find(m, a).is_none())
        {
            // An address outside the mappings read: the process mapped more since (a
            // library loaded after the exec notice). Read them again, once per drain.
            if let Some(fresh) = read_maps(tgid) {
                let p = self.proc(tgid);
                p.maps = Some(fresh.clone());
                maps = Some(fresh);
            }
            self.proc(tgid).refreshed = true;
        }
        let frames = match maps {
            Some(maps) => {
                let mut frames = self.symbolize_user(&maps, &addrs);
                // Outermost first, as folded stacks are written.
                frames.reverse();
                if (1..=2).contains(&addrs.len()) {
                    frames.insert(0, Arc::from(SHORT_STACK));
                }
                frames
            }
            // Said once per stack, in its place: nothing is known of its frames.
            None => vec![Arc::from("[unresolved: process exited]")],
        };
        let fid = self.table.frames_id(frames.into());
        // An inline id names one call's stack only; a map id, the same stack always.
        if !is_inline(id) {
            self.proc(tgid).stacks.insert(id, fid);
        }
        fid
    }

    /// Names for `addrs` (innermost first) in a process with mappings `maps`.
    fn symbolize_user(&mut self, maps: &[Mapping], addrs: &[u64]) -> Vec<Arc<str>> {
        if self.user_syms.len() >= MAX_SYMBOLS {
            self.user_syms.clear();
        }
        // Return addresses point after their call: look up the byte before, which is
        // inside the calling function. The first frame is the exact user IP.
        let lookup = |i: usize, a: u64| if i == 0 { a } else { a.saturating_sub(1) };
        let mut out: Vec<Option<Arc<str>>> = vec![None; addrs.len()];
        let mut todo: HashMap<Arc<Path>, Vec<(usize, u64)>> = HashMap::new();
        for (i, &a) in addrs.iter().enumerate() {
            let a = lookup(i, a);
            out[i] = match find(maps, a).map(|m| (m, &m.what)) {
                None => Some(Arc::from("[unknown]")),
                Some((_, Mapped::Vdso)) => Some(Arc::from("[vdso]")),
                Some((_, Mapped::Anon)) => Some(Arc::from("[unknown]")),
                Some((_, Mapped::Deleted(name))) => Some(Arc::from(format!("[{name} (deleted)]"))),
                Some((m, Mapped::File(path))) => {
                    let off = a - m.start + m.offset;
                    match self.user_syms.get(&(path.clone(), off)) {
                        Some(s) => Some(s.clone()),
                        None => {
                            todo.entry(path.clone()).or_default().push((i, off));
                            None
                        }
                    }
                }
            };
        }
        for (path, wanted) in todo {
            let offsets: Vec<u64> = wanted.iter().map(|w| w.1).collect();
            let module = module_name(&path);
            let src = Source::Elf(Elf::new(path.to_path_buf()));
            let names: Vec<Arc<str>> =
                match self.symbolizer.symbolize(&src, Input::FileOffset(&offsets)) {
                    Ok(syms) => syms
                        .into_iter()
                        .map(|s| match s {
                            Symbolized::Sym(sym) => Arc::from(sym.name.as_ref()),
                            Symbolized::Unknown(_) => Arc::from(format!("[{module}]")),
                        })
                        .collect(),
                    Err(e) => {
                        log::debug!("cannot symbolize {}: {e}", path.display());
                        vec![Arc::from(format!("[{module}]")); offsets.len()]
                    }
                };
            for ((i, off), name) in wanted.into_iter().zip(names) {
                self.user_syms.insert((path.clone(), off), name.clone());
                out[i] = Some(name);
            }
        }
        out.into_iter()
            .map(|n| n.unwrap_or_else(|| Arc::from("[unknown]")))
            .collect()
    }

    fn kernel_stack(&mut self, id: i32) -> u32 {
        if id < 0 {
            let why = lost(id, "kernel");
            return self.note(&why);
        }
        if let Some(&f) = self.kernel.get(&id) {
            return f;
        }
        let Some(addrs) = self.trace(id) else {
            return self.note(&missing(id, "kernel"));
        };
        if self.kernel_syms.len() >= MAX_SYMBOLS {
            self.kernel_syms.clear();
        }
        let missing: Vec<u64> = addrs
            .iter()
            .copied()
            .filter(|a| !self.kernel_syms.contains_key(a))
            .collect();
        if !missing.is_empty() {
            let src = Source::Kernel(Kernel {
                // kallsyms only: a vmlinux image is rarely installed, and searching for one
                // costs file-system probes.
                vmlinux: blazesym::MaybeDefault::None,
                ..Kernel::default()
            });
            // Return addresses, like the user frames: the byte before is in the caller.
            let lookup: Vec<u64> = missing.iter().map(|a| a.saturating_sub(1)).collect();
            let names: Vec<Arc<str>> =
                match self.symbolizer.symbolize(&src, Input::AbsAddr(&lookup)) {
                    Ok(syms) => syms
                        .into_iter()
                        .map(|s| match s {
                            Symbolized::Sym(sym) => Arc::from(sym.name.as_ref()),
                            Symbolized::Unknown(_) => Arc::from("[unknown]"),
                        })
                        .collect(),
                    Err(e) => {
                        log::debug!("cannot symbolize kernel addresses: {e}");
                        vec![Arc::from("[unknown]"); missing.len()]
                    }
                };
            for (a, n) in missing.into_iter().zip(names) {
                self.kernel_syms.insert(a, n);
            }
        }
        let names: Vec<Arc<str>> = addrs
            .iter()
            .map(|a| {
                self.kernel_syms
                    .get(a)
                    .cloned()
                    .unwrap_or_else(|| Arc::from("[unknown]"))
            })
            .collect();
        // The innermost frames are the tracing machinery that ran syslat's program, the
        // same for every call: left out.
        let skip = names.iter().take_while(|n| is_tracing_frame(n)).count();
        let frames: Frames = names[skip..].iter().rev().cloned().collect();
        let fid = self.table.frames_id(frames);
        if !is_inline(id) {
            self.kernel.insert(id, fid);
        }
        fid
    }
}

/// Why stack `id` (`which`: user or kernel) has no frames to read.
fn missing(id: i32, which: &str) -> String {
    if is_inline(id) {
        format!("[{which} stack lost: its frames were not received]")
    } else {
        format!("[{which} stack lost: not in the map]")
    }
}

/// Whether stack `id` was sent in the ring buffer rather than stored in the map.
fn is_inline(id: i32) -> bool {
    id >= profiler_common::INLINE_STACK_BASE
}

/// The mapping of sorted `maps` that holds address `a`.
fn find(maps: &[Mapping], a: u64) -> Option<&Mapping> {
    match maps.binary_search_by(|m| m.start.cmp(&a)) {
        Ok(k) => Some(&maps[k]),
        Err(0) => None,
        Err(k) => Some(&maps[k - 1]),
    }
    .filter(|m| a < m.end)
}

/// The frame that stands for a stack the helper could not take (`errno` negative).
fn lost(errno: i32, which: &str) -> String {
    if errno == profiler_common::NO_STACK {
        return format!("[no {which} stack]");
    }
    match -errno {
        // get_perf_callchain found no frame (no user context, or no memory at the IP).
        libc::EFAULT => format!("[no {which} stack]"),
        libc::EEXIST => format!("[{which} stack lost: stack map bucket taken]"),
        libc::ENOSPC => format!("[{which} stack lost: bucket taken, frames ring buffer full]"),
        libc::ENOMEM => format!("[{which} stack lost: stack map full]"),
        e => format!("[{which} stack lost: errno {e}]"),
    }
}

/// Whether kernel frame `name` belongs to the tracepoint and BPF machinery that runs the
/// program taking the stack (`bpf_prog_<tag>_sys_exit`, `bpf_trace_run2`, ...).
fn is_tracing_frame(name: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "bpf_prog_",
        "bpf_trace_run",
        "__bpf_trace_",
        "__traceiter_",
        "trace_call_bpf",
        "__bpf_prog_run",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The file name of a mapped path, for unknown addresses in it.
fn module_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `/proc/PID/maps`, sorted, with each file's path as this process can open it (through
/// `/proc/PID/root` when the process sees another file system, as in a container).
fn read_maps(tgid: u32) -> Option<Arc<[Mapping]>> {
    use procfs::process::MMapPath;
    let proc = procfs::process::Process::new(tgid as i32).ok()?;
    let maps = proc.maps().ok()?;
    let mut opened: HashMap<PathBuf, Mapped> = HashMap::new();
    let mut out: Vec<Mapping> = Vec::new();
    for m in maps {
        let what = match &m.pathname {
            MMapPath::Path(p) => opened
                .entry(p.clone())
                .or_insert_with(|| file_of(tgid, p))
                .clone(),
            MMapPath::Vdso => Mapped::Vdso,
            _ => Mapped::Anon,
        };
        out.push(Mapping {
            start: m.address.0,
            end: m.address.1,
            offset: m.offset,
            what,
        });
    }
    out.sort_by_key(|m| m.start);
    Some(out.into())
}

/// How to open the mapped file `p` of process `tgid`.
fn file_of(tgid: u32, p: &Path) -> Mapped {
    let text = p.to_string_lossy();
    if let Some(name) = text.strip_suffix(" (deleted)") {
        return Mapped::Deleted(Arc::from(module_name(Path::new(name))));
    }
    if p.exists() {
        return Mapped::File(Arc::from(p));
    }
    let inside = Path::new("/proc")
        .join(tgid.to_string())
        .join("root")
        .join(p.strip_prefix("/").unwrap_or(p));
    Mapped::File(Arc::from(inside.as_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_mappings_are_read_and_sorted() {
        let maps = read_maps(std::process::id()).expect("own maps");
        assert!(maps.windows(2).all(|w| w[0].start <= w[1].start));
        let exe = std::env::current_exe().unwrap();
        assert!(
            maps.iter()
                .any(|m| matches!(&m.what, Mapped::File(p) if **p == *exe)),
            "the test binary is mapped"
        );
        assert!(read_maps(u32::MAX - 1).is_none());
    }

    #[test]
    fn tracing_frames_are_recognised() {
        assert!(is_tracing_frame("bpf_prog_c41ea8e6b0d9a3a3_sys_exit"));
        assert!(is_tracing_frame("__traceiter_sched_switch"));
        assert!(!is_tracing_frame("do_nanosleep"));
    }

    #[test]
    fn lost_stacks_say_why() {
        assert_eq!(
            lost(-libc::EEXIST, "user"),
            "[user stack lost: stack map bucket taken]"
        );
        assert_eq!(
            lost(-libc::ENOSPC, "kernel"),
            "[kernel stack lost: bucket taken, frames ring buffer full]"
        );
        assert_eq!(lost(-libc::EFAULT, "kernel"), "[no kernel stack]");
        assert_eq!(lost(-5, "user"), "[user stack lost: errno 5]");
    }
}
