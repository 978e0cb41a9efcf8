#!/bin/busybox sh
# PID 1 of `cargo xtask vm-test`'s guests (an initramfs: busybox-static, a static syslat and
# the workload helper, no libc). Runs the smoke suite and prints one line per check on the
# console, `CHECK <name> PASS|FAIL <detail>`, then `VMTEST-END`, and powers off. A check
# that cannot run is a FAIL with the reason; the host fails a kernel on any FAIL or missing
# check (the list of names lives in xtask/src/vm.rs).

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
exec </dev/null 2>&1
cd /tmp

echo "VMTEST-BOOTED $(uname -r)"
echo "INFO kernel $(uname -rv)"
echo "INFO cmdline $(cat /proc/cmdline)"
echo "INFO cpus $(nproc) clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
if [ -r /sys/kernel/debug/sched/preempt ]; then
	echo "INFO preempt $(cat /sys/kernel/debug/sched/preempt)"
fi
if [ "$vmtest" = probe ]; then
	poweroff -f
fi

W=/bin/workload
S=/bin/syslat
ERR=/tmp/syslat.err

now() { read -r up _ </proc/uptime; echo "$up"; }

# check NAME FUNCTION: runs FUNCTION, which sets $detail and returns 0 for a pass.
check() {
	name=$1
	detail=
	: >"$ERR"
	t0=$(now)
	if "$2"; then r=PASS; else r=FAIL; fi
	t1=$(now)
	detail=${detail# }
	secs=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
	echo "CHECK $name $r $detail (${secs}s)"
	if [ $r = FAIL ] && [ -s "$ERR" ]; then
		sed "s/^/STDERR $name: /" "$ERR" | tail -n 20
	fi
}

# Why syslat failed: its exit status and the last line it wrote on stderr.
why() { echo "syslat exit $1: $(grep -v '^syslat: tracing' "$ERR" | tail -n 1)"; }

# j FILE KEY: one value of FILE's summary line (see the workload's `json` step).
j() { $W json "$1" "$2" 2>/dev/null || echo none; }

# expect LABEL ACTUAL WANTED: appends to $detail; false when they differ.
expect() {
	detail="$detail $1=$2"
	if [ "$2" = "$3" ]; then return 0; fi
	detail="$detail(want $3)"
	return 1
}

# within LABEL VALUE LO HI: LO <= VALUE <= HI (integers).
within() {
	detail="$detail $1=$2"
	case $2 in '' | *[!0-9]*)
		detail="$detail(not a number)"
		return 1
		;;
	esac
	if [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then return 0; fi
	detail="$detail(want $3..$4)"
	return 1
}

# rec OUT ARGS..: `syslat record -f json -o OUT ARGS..` with a time limit.
rec() {
	out=$1
	shift
	rm -f "$out"
	timeout -s KILL 150 $S record -f json -o "$out" "$@" 2>"$ERR"
}

# started PID TEXT: waits (up to 90 s) for syslat's first stderr line starting with TEXT.
started() {
	n=0
	while [ $n -lt 900 ]; do
		if grep -q "^$2" "$ERR"; then return 0; fi
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			detail="$detail $(why $?) (before it started)"
			return 1
		fi
		sleep 0.1
		n=$((n + 1))
	done
	detail="$detail syslat did not start in 90 s"
	kill -KILL "$1"
	wait "$1"
	return 1
}

# finish PID SIGNAL: sends SIGNAL (if not empty), waits up to 60 s, then SIGKILL; sets $rc.
finish() {
	if [ -n "$2" ]; then kill -"$2" "$1" 2>/dev/null; fi
	n=0
	while kill -0 "$1" 2>/dev/null && [ $n -lt 600 ]; do
		# A zombie is done: only `wait` reaps it.
		case $(cat /proc/"$1"/stat 2>/dev/null) in *") Z "*) break ;; esac
		sleep 0.1
		n=$((n + 1))
	done
	if [ $n -ge 600 ]; then
		detail="$detail (killed: still running after 60 s)"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	rc=$?
}

# A gate: `workload gate ...` reads a line from fd 3 (a FIFO opened read-write, so neither
# side blocks in open); `release` lets it go.
gate_open() {
	rm -f /tmp/gate
	mkfifo /tmp/gate
	exec 3<>/tmp/gate
}
release() { echo go >&3; }
gate_close() { exec 3>&-; }
# let_go: releases the gated workload $wpid, waits for it and closes the gate.
let_go() {
	release
	wait $wpid
	gate_close
}

t_getppid_1thread() {
	rec o.json -- $W getppid 100000 || { detail=$(why $?); return 1; }
	expect getppid "$(j o.json getppid.count)" 100000
}

t_getppid_threads() {
	rec o.json -- $W threads 4 25000 || { detail=$(why $?); return 1; }
	expect getppid "$(j o.json getppid.count)" 100000
}

t_getppid_forks() {
	rec o.json -- $W forks 2000 getppid 100000 || { detail=$(why $?); return 1; }
	ok=0
	expect getppid "$(j o.json getppid.count)" 100000 || ok=1
	expect clone "$(j o.json clone.count)" 2000 || ok=1
	expect wait4 "$(j o.json wait4.count)" 2000 || ok=1
	expect unfinished "$(j o.json unfinished_calls)" 2001 || ok=1
	return $ok
}

t_pid() {
	gate_open
	$W gate getppid 50000 <&3 &
	wpid=$!
	rm -f p.json
	timeout -s KILL 150 $S record -f json -o p.json -p $wpid 2>"$ERR" &
	spid=$!
	if ! started $spid "syslat: tracing"; then
		let_go
		return 1
	fi
	let_go
	finish $spid ""
	[ $rc = 0 ] || { detail="$detail $(why $rc)"; return 1; }
	expect getppid "$(j p.json getppid.count)" 50000
}

t_cgroup() {
	cg=/sys/fs/cgroup/vmtest
	mkdir -p $cg || { detail="cannot create $cg"; return 1; }
	gate_open
	$W gate getppid 50000 <&3 &
	wpid=$!
	if ! echo $wpid >$cg/cgroup.procs; then
		detail="cannot move $wpid into $cg"
		let_go
		return 1
	fi
	rm -f c.json
	timeout -s KILL 150 $S record -f json -o c.json --cgroup $cg 2>"$ERR" &
	spid=$!
	if ! started $spid "syslat: tracing"; then
		let_go
		return 1
	fi
	let_go
	finish $spid INT
	[ $rc = 130 ] || { detail="$detail $(why $rc) (want 130 after SIGINT)"; return 1; }
	expect getppid "$(j c.json getppid.count)" 50000
}

t_comm() {
	ln -sf $W /tmp/latecomer
	rm -f n.json
	timeout -s KILL 150 $S record -f json -o n.json -c latecomer 2>"$ERR" &
	spid=$!
	started $spid "syslat: tracing" || return 1
	/tmp/latecomer getppid 30000 enoent 10
	finish $spid INT
	[ $rc = 130 ] || { detail="$detail $(why $rc) (want 130 after SIGINT)"; return 1; }
	ok=0
	expect getppid "$(j n.json getppid.count)" 30000 || ok=1
	expect ENOENT "$(j n.json openat.errnos.ENOENT)" 10 || ok=1
	# The exec that brings it into the target set is timed from its enter.
	expect execve "$(j n.json execve.count)" 1 || ok=1
	expect unpaired "$(j n.json unpaired_events)" 0 || ok=1
	return $ok
}

t_syscall_filter() {
	rec o.json -s getppid -- $W enoent 100 getppid 20000 threads 2 5000 || {
		detail=$(why $?)
		return 1
	}
	ok=0
	expect rows "$(j o.json rows)" 1 || ok=1
	expect getppid "$(j o.json getppid.count)" 30000 || ok=1
	expect calls "$(j o.json calls)" 30000 || ok=1
	return $ok
}

# own_nth DURATIONS FAST: of the workload's own durations of a row's slow calls (its
# timed steps print them), the one matching the row's p50 when FAST more of the row's
# calls are faster than any of them: the ⌈(n + FAST)/2⌉ - FAST-th smallest.
own_nth() {
	n=$(echo $1 | wc -w)
	i=$(((n + $2 + 1) / 2 - $2))
	echo $1 | tr ' ' '\n' | sort -n | sed -n "${i}p"
}

# p50_like_own ROW_P50 OWN [FLOOR]: syslat's p50 no larger than the matching call's own
# bracket (0.1 % for the histogram's rounding) and not 10 % smaller, nor below FLOOR.
# Timing bounds of emulation on a loaded host cannot hold; this does however slow it is.
p50_like_own() {
	case $2 in '' | *[!0-9]*)
		detail="$detail own=$2(not a number)"
		return 1
		;;
	esac
	detail="$detail own_ns=$2"
	lo=$(($2 - $2 / 10))
	[ "$lo" -ge "${3:-0}" ] || lo=$3
	within p50_ns "$1" $lo $(($2 + $2 / 1000 + 1))
}

t_sleep() {
	own=$(rec o.json -- $W timed-sleep 20 10) || { detail=$(why $?); return 1; }
	ok=0
	expect count "$(j o.json clock_nanosleep.count)" 20 || ok=1
	# A 10 ms sleep takes at least 10 ms.
	p50_like_own "$(j o.json clock_nanosleep.p50_ns)" "$(own_nth "$own" 0)" 10000000 || ok=1
	return $ok
}

t_pipe() {
	own=$(rec o.json -- $W timed-pipe 20 5) || { detail=$(why $?); return 1; }
	# The static workload reads nothing at start-up; any other read is counted as fast.
	reads=$(j o.json read.count)
	case $reads in '' | *[!0-9]*) reads=0 ;; esac
	[ "$reads" -ge 20 ] || { detail="reads=$reads(want >= 20)"; return 1; }
	fast=$((reads - 20))
	p50_like_own "$(j o.json read.p50_ns)" "$(own_nth "$own" $fast)"
}

# The anatomy: a thread sharing CPU 0 with a SCHED_FIFO hog waits on the run queue; its
# clock_nanosleep calls' run-queue total must match the kernel's own schedstat run_delay
# (printed by the workload) within 25 %, and the three parts must sum to the total.
t_anatomy() {
	rm -f o.json
	set -- $(timeout -s KILL 150 $S record -f json -o o.json -s clock_nanosleep -- \
		$W starve 100 1000 20 5 2>"$ERR") || { detail=$(why $?); return 1; }
	[ -n "$2" ] || { detail="no run_delay from the workload"; return 1; }
	rd=$2
	runq=$(j o.json clock_nanosleep.runq_total_ns)
	ok=0
	within runq_ns "$runq" $((rd * 3 / 4)) $((rd * 5 / 4)) || ok=1
	detail="$detail schedstat=$rd"
	on=$(j o.json clock_nanosleep.oncpu_total_ns)
	bl=$(j o.json clock_nanosleep.blocked_total_ns)
	expect parts_sum "$((on + runq + bl))" "$(j o.json clock_nanosleep.total_ns)" || ok=1
	return $ok
}

t_enoent() {
	rec o.json -- $W enoent 100 || { detail=$(why $?); return 1; }
	expect ENOENT "$(j o.json openat.errnos.ENOENT)" 100
}

# --stacks with a stack-trace map of 2 entries: nearly every stack collides and goes by
# the FRAMES ring buffer (bpf_get_stack), so this checks that path loads and is exact.
t_stacks() {
	rm -f st.folded
	SYSLAT_STACK_MAP_ENTRIES=2 timeout -s KILL 150 $S record --stacks --stacks-weight count \
		-f folded -o st.folded -- $W getppid 2000 2>"$ERR" || { detail=$(why $?); return 1; }
	ok=0
	expect getppid "$(awk '/;getppid [0-9]+$/ { s += $NF } END { print s + 0 }' st.folded)" 2000 || ok=1
	expect lost "$(grep -c 'lost' st.folded)" 0 || ok=1
	expect no-kernel-frames "$(grep ';getppid [0-9]*$' st.folded | grep -vc '_\[k\]')" 0 || ok=1
	[ $ok = 0 ] || grep 'getppid\|lost' st.folded | head -n 5 | sed 's/^/STDERR stacks: /'
	return $ok
}

t_top() {
	timeout -s KILL 90 $S top -b -n 2 >top.out 2>"$ERR"
	rc=$?
	[ $rc = 0 ] || { detail=$(why $rc); return 1; }
	ok=0
	expect frames "$(grep -c '^syslat top' top.out)" 2 || ok=1
	expect headers "$(grep -c '^SYSCALL  *CALLS' top.out)" 2 || ok=1
	[ $ok = 0 ] || sed 's/^/STDERR top: stdout: /' top.out | head -n 10
	return $ok
}

t_serve() {
	gate_open
	timeout -s KILL 150 $S serve --listen 127.0.0.1:9876 -s getppid -- $W getppid 1234 gate <&3 2>"$ERR" &
	spid=$!
	if ! started $spid "syslat: serving"; then
		gate_close
		return 1
	fi
	want='syslat_syscall_duration_seconds_count{syscall="getppid"} 1234'
	n=0
	got=
	while [ $n -lt 60 ]; do
		wget -q -O metrics.txt http://127.0.0.1:9876/metrics 2>/dev/null
		if grep -qxF "$want" metrics.txt; then
			got=1
			break
		fi
		sleep 0.5
		n=$((n + 1))
	done
	release
	finish $spid ""
	gate_close
	ok=0
	if [ -n "$got" ]; then
		detail="$detail count=1234"
	else
		detail="$detail no line '$want' in 30 s (got: $(grep -F 'count{syscall="getppid"}' metrics.txt 2>/dev/null || echo nothing))"
		ok=1
	fi
	expect traced_total "$(sed -n 's/^syslat_traced_syscalls_total //p' metrics.txt)" 1234 || ok=1
	expect exit "$rc" 0 || ok=1
	return $ok
}

# The names of the loaded BPF programs, sorted, on one line.
progs() {
	$W bpf-progs >progs.txt || return 1
	cut -d' ' -f3- progs.txt | sort | tr '\n' ' '
}

t_sigkill() {
	before=$(progs) || { detail="workload bpf-progs failed: $(cat progs.txt)"; return 1; }
	rm -f k.json
	$S record -f json -o k.json 2>"$ERR" &
	spid=$!
	started $spid "syslat: tracing" || return 1
	during=$(progs)
	kill -KILL $spid
	wait $spid
	ok=0
	# The raw tracepoint programs, or perf's (`_tp`, 7.2 and later).
	for p in sys_enter sys_exit; do
		case " $during" in *" $p "* | *" ${p}_tp "*) ;; *)
			detail="$detail while tracing, no $p program listed: [$during]"
			ok=1
			;;
		esac
	done
	# Programs are freed once the last reference goes (after an RCU grace period).
	n=0
	while [ "$(progs)" != "$before" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	after=$(progs)
	if [ "$after" != "$before" ]; then
		detail="$detail after SIGKILL still loaded: [$after] (before: [$before])"
		ok=1
	else
		detail="$detail loaded while tracing: [$during], none left"
	fi
	return $ok
}

t_preempt_stress() {
	# syslat itself pinned to CPU 0 with the 16 threads: it must drain the buffers while
	# competing with them (drops are allowed, and counted).
	rm -f o.json
	timeout -s KILL 200 taskset -c 0 $S record -f json -o o.json -s getppid -- $W pinned-threads 16 200000 0 >stress.out 2>"$ERR"
	rc=$?
	[ $rc = 0 ] || { detail=$(why $rc); return 1; }
	count=$(j o.json getppid.count)
	dropped=$(j o.json dropped_events)
	case "$count$dropped" in *[!0-9]*)
		detail="count=$count dropped=$dropped"
		return 1
		;;
	esac
	ok=0
	expect counted+dropped "$((count + dropped))" 3200000 || ok=1
	# How often a call was switched out inside the syscall (preempted, on kernels whose
	# programs or calls can be): the path that moves a call's slot to its task.
	detail="$detail (counted $count, dropped $dropped, lost $(j o.json lost_events), switches $(j o.json getppid.switches), involuntary $(j o.json getppid.involuntary_switches); $(cat stress.out))"
	expect unpaired "$(j o.json unpaired_events)" 0 || ok=1
	expect stale "$(j o.json stale_events)" 0 || ok=1
	expect skipped "$(j o.json skipped_runs)" 0 || ok=1
	return $ok
}

# syslat doctor: exit 0, and which object and BTF access it chose (the host's table shows
# the object per kernel).
t_doctor() {
	$S doctor >doctor.out 2>"$ERR"
	rc=$?
	sed 's/^/INFO doctor: /' doctor.out
	[ $rc = 0 ] || { detail=$(why $rc); return 1; }
	object=$(sed -n 's/^eBPF object  \([a-z]*\).*/\1/p' doctor.out)
	btf=$(sed -n 's/^kernel BTF   \([a-z]*\).*/\1/p' doctor.out)
	hook=$(sed -n 's/^syscalls     \([a-z]*\).*/\1/p' doctor.out)
	# From 7.2 the raw syscall tracepoints run programs preemptible: perf's must be used.
	want=raw
	release=$(uname -r)
	major=${release%%.*}
	minor=${release#*.}
	minor=${minor%%[!0-9]*}
	if [ "$major" -gt 7 ] || { [ "$major" = 7 ] && [ "$minor" -ge 2 ]; }; then
		want=perf
	fi
	detail="object=$object btf=$btf hook=$hook (want $want)"
	[ -n "$object" ] && [ -n "$btf" ] && [ "$hook" = "$want" ]
}

check doctor t_doctor
check getppid-1thread t_getppid_1thread
check getppid-threads t_getppid_threads
check getppid-forks t_getppid_forks
check pid t_pid
check cgroup t_cgroup
check comm-later t_comm
check syscall-filter t_syscall_filter
check sleep-p50 t_sleep
check pipe-p50 t_pipe
check anatomy t_anatomy
check enoent t_enoent
check stacks t_stacks
check top t_top
check serve t_serve
check sigkill-detach t_sigkill
check preempt-stress t_preempt_stress

echo VMTEST-END
echo DMESG-BEGIN
dmesg
echo DMESG-END
poweroff -f
echo o >/proc/sysrq-trigger
sleep 10
