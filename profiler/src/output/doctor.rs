//! `syslat doctor`'s report: what this kernel supports, which mechanism syslat uses for
//! each feature, and what that costs, in the spirit of `bpftool feature probe`. Pure
//! formatting of plain data gathered by `cmd::doctor`.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use crate::collect::{
    features::{Feature, Flavor, SyscallHook},
    kernel_btf::BtfAccess,
};

/// Everything the report says.
#[derive(Clone, Debug)]
pub struct DoctorReport {
    /// `/proc/sys/kernel/osrelease`.
    pub release: String,
    /// The preemption model, from `/proc/version` (`PREEMPT_RT`, `PREEMPT_DYNAMIC`, ...).
    pub preemption: String,
    /// `None`: may load programs; else what is missing.
    pub missing_caps: Option<String>,
    /// How the BTF file opened, or why not.
    pub btf: Result<BtfAccess, String>,
    /// Each feature: present, absent, or the probe's error.
    pub features: Vec<(Feature, Result<bool, String>)>,
    /// The object syslat would load, or the missing required feature.
    pub flavor: Result<Flavor, String>,
    /// Whether `SYSLAT_FORCE_FALLBACK` is set.
    pub forced: bool,
    /// How the syscall programs would be hooked, or why `SYSLAT_SYSCALL_HOOK` is refused.
    pub hook: Result<SyscallHook, String>,
    /// Whether `SYSLAT_SYSCALL_HOOK` is set.
    pub hook_forced: bool,
}

impl DoctorReport {
    /// Whether syslat can trace on this machine.
    pub fn ok(&self) -> bool {
        self.missing_caps.is_none() && self.btf.is_ok() && self.flavor.is_ok() && self.hook.is_ok()
    }
}

/// The report as text.
pub fn render(r: &DoctorReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel       {} ({})", r.release, r.preemption);
    let _ = writeln!(
        s,
        "privileges   {}",
        match &r.missing_caps {
            None => "may load and attach tracing programs".to_string(),
            Some(m) => format!("missing {m} (run as root)"),
        }
    );
    let _ = writeln!(
        s,
        "kernel BTF   {}",
        match &r.btf {
            Ok(BtfAccess::Mapped) => "mapped in place".to_string(),
            Ok(BtfAccess::Read) => {
                "read into memory (mapping /sys/kernel/btf/vmlinux needs Linux 6.16)".to_string()
            }
            Err(e) => format!("unusable: {e}"),
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<54} {:<6} {:<11} SYSLAT", "FEATURE", "HERE", "SINCE");
    let legacy = matches!(r.flavor, Ok(Flavor::Legacy));
    for (f, found) in &r.features {
        let here = match found {
            Ok(true) => "yes".to_string(),
            Ok(false) => "no".to_string(),
            Err(e) => format!("? ({e})"),
        };
        let (with, without) = f.used_for();
        let how = match without {
            None => format!("{with} (required)"),
            Some(fallback) if legacy => format!("{with}: {fallback}"),
            Some(_) => with.to_string(),
        };
        let _ = writeln!(s, "{:<54} {:<6} {:<11} {how}", f.name(), here, f.since());
    }
    let _ = writeln!(s);
    match &r.flavor {
        Ok(Flavor::Default) => {
            let _ = writeln!(s, "eBPF object  default");
        }
        Ok(Flavor::Legacy) => {
            let why = if r.forced {
                "forced by SYSLAT_FORCE_FALLBACK"
            } else {
                "this kernel lacks a feature above"
            };
            let _ = writeln!(s, "eBPF object  legacy ({why})");
        }
        Err(e) => {
            let _ = writeln!(s, "eBPF object  none: {e}");
        }
    }
    let since = SyscallHook::PREEMPTIBLE_RAW_SINCE;
    let _ = match &r.hook {
        Ok(hook) if r.hook_forced => {
            writeln!(
                s,
                "syscalls     {} (forced by SYSLAT_SYSCALL_HOOK)",
                hook.name()
            )
        }
        Ok(hook @ SyscallHook::Perf) => writeln!(
            s,
            "syscalls     {} (from {}.{} a raw tracepoint program may be preempted)",
            hook.name(),
            since.0,
            since.1
        ),
        Ok(hook) => writeln!(s, "syscalls     {}", hook.name()),
        Err(e) => writeln!(s, "syscalls     none: {e}"),
    };
    let _ = writeln!(
        s,
        "cost         a call that returns on its CPU without a switch: the same on both \
         objects (per-CPU slot and log)"
    );
    let _ = writeln!(
        s,
        "             a call switched out mid-syscall: {}",
        if legacy {
            "a hash update at the switch, a lookup and a delete at its return"
        } else {
            "a task-storage update at the switch, a lookup at its return"
        }
    );
    let _ = writeln!(
        s,
        "status       {}",
        if r.ok() {
            "syslat can trace here"
        } else {
            "syslat cannot trace here (see above)"
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(flavor: Result<Flavor, String>) -> DoctorReport {
        DoctorReport {
            release: "5.10.0-35-amd64".into(),
            preemption: "PREEMPT_DYNAMIC".into(),
            missing_caps: None,
            btf: Ok(BtfAccess::Read),
            features: Feature::ALL
                .iter()
                .map(|&f| (f, Ok(f == Feature::RingBuf)))
                .collect(),
            flavor,
            forced: false,
            hook: Ok(SyscallHook::Raw),
            hook_forced: false,
        }
    }

    #[test]
    fn the_syscall_hook_says_why() {
        let mut r = report(Ok(Flavor::Default));
        assert!(render(&r).contains("syscalls     raw tracepoints (raw_tp/sys_enter"));
        r.hook = Ok(SyscallHook::Perf);
        assert!(render(&r).contains(
            "syscalls     perf tracepoints (tracepoint/raw_syscalls/sys_{enter,exit}) (from 7.2 \
             a raw tracepoint program may be preempted)"
        ));
        r.hook_forced = true;
        assert!(render(&r).contains("(forced by SYSLAT_SYSCALL_HOOK)"));
        r.hook = Err("SYSLAT_SYSCALL_HOOK must be raw or perf, not \"x\"".into());
        assert!(!r.ok());
        assert!(render(&r).contains("syscalls     none: SYSLAT_SYSCALL_HOOK must be raw or perf"));
    }

    #[test]
    fn legacy_kernel_names_each_fallback() {
        let text = render(&report(Ok(Flavor::Legacy)));
        assert!(text.contains("kernel       5.10.0-35-amd64 (PREEMPT_DYNAMIC)"));
        assert!(text.contains("read into memory"));
        assert!(text.contains("eBPF object  legacy (this kernel lacks a feature above)"));
        assert!(text.contains("test-and-add on the bit"));
        assert!(text.contains("bpf_current_task_under_cgroup"));
        assert!(text.contains("a hash update at the switch"));
        assert!(text.contains("status       syslat can trace here"));
    }

    #[test]
    fn missing_required_feature_is_not_ok() {
        let r = report(Err("this kernel lacks the BPF ring buffer map".into()));
        assert!(!r.ok());
        let text = render(&r);
        assert!(text.contains("eBPF object  none: this kernel lacks the BPF ring buffer map"));
        assert!(text.contains("syslat cannot trace here"));
    }
}
