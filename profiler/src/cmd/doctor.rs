//! `syslat doctor`: gathers what the kernel supports (`collect::features`, the BTF file,
//! privileges) and prints `output::doctor`'s report. Exit 0 when syslat can trace here,
//! 2 when it cannot.

use std::io::Write as _;

use anyhow::Context as _;

use crate::{
    collect::{
        features::{KernelFeatures, SYSCALL_HOOK_ENV, SyscallHook},
        kernel_btf, privileges,
    },
    output::doctor::{DoctorReport, render},
};

/// Runs `syslat doctor`.
pub fn run() -> anyhow::Result<i32> {
    let missing_caps = privileges::missing_capabilities();
    let kernel = KernelFeatures::probe();
    let report = DoctorReport {
        release: read_trimmed("/proc/sys/kernel/osrelease"),
        preemption: preemption_model(&read_trimmed("/proc/version")),
        btf: kernel_btf::offsets(kernel.forced)
            .map(|(_, access)| access)
            .map_err(|e| format!("{e:#}")),
        flavor: kernel.flavor().map_err(|e| e.to_string()),
        forced: kernel.forced,
        hook: SyscallHook::current().map_err(|e| e.to_string()),
        hook_forced: std::env::var_os(SYSCALL_HOOK_ENV).is_some_and(|v| !v.is_empty()),
        features: kernel
            .found
            .into_iter()
            .map(|(f, r)| (f, r.map_err(|e| format!("{:#}", anyhow::Error::new(e)))))
            .collect(),
        missing_caps,
    };
    std::io::stdout()
        .lock()
        .write_all(render(&report).as_bytes())
        .context("failed to write to stdout")?;
    Ok(if report.ok() { 0 } else { 2 })
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({path}: {e})"))
}

/// The preemption model named in the kernel's version string.
fn preemption_model(version: &str) -> String {
    for model in ["PREEMPT_RT", "PREEMPT_DYNAMIC", "PREEMPT_LAZY", "PREEMPT"] {
        if version.split_whitespace().any(|w| w == model) {
            return model.to_string();
        }
    }
    "no forced preemption".to_string()
}

#[cfg(test)]
mod tests {
    use super::preemption_model;

    #[test]
    fn preemption_from_version() {
        assert_eq!(
            preemption_model("Linux version 6.12.57+deb13-rt-amd64 (...) #1 SMP PREEMPT_RT Debian"),
            "PREEMPT_RT"
        );
        assert_eq!(
            preemption_model("#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1"),
            "PREEMPT_DYNAMIC"
        );
        assert_eq!(
            preemption_model("#1 SMP Debian 5.10.244-1"),
            "no forced preemption"
        );
    }
}
