"""Bring up a real single-node Slurm on this machine, without installing it.

Debian's Slurm 22.05 packages (``slurmctld``, ``slurmd``, ``slurm-client``,
``slurm-wlm-basic-plugins`` and ``libhwloc15``) are fetched with ``apt-get
download`` and unpacked with ``dpkg -x`` into a cache folder: nothing is
installed system-wide. The cluster is one node, ``localhost``, with the
machine's CPUs, fake GPUs (``gres/gpu`` without device files, so jobs that
ask for GPUs are scheduled), no munge (``auth/none``), no accounting, on free
loopback ports. It runs as root. ``sacct`` does not work without accounting,
as on many clusters that restrict it.

Usage::

    python tools/local_slurm.py up ROOT      # prints the environment to use
    eval "$(python tools/local_slurm.py env ROOT)"
    sbatch --wrap hostname; squeue
    python tools/local_slurm.py down ROOT

The test fixture (``tests/e2e/test_slurm_cluster.py``) uses
:class:`LocalSlurm` directly.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

PACKAGES = ('slurmctld', 'slurmd', 'slurm-client', 'slurm-wlm-basic-plugins',
            'libhwloc15')
LIB_DIRS = ('usr/lib/x86_64-linux-gnu/slurm-wlm', 'usr/lib/x86_64-linux-gnu')
DEFAULT_CACHE = osp.join(
    os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')),
    'mmdet-plugins', 'slurm-22.05')
STATE = 'cluster.json'


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be had or started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def unpack_packages(cache: str = DEFAULT_CACHE) -> str:
    """Download and unpack the packages once; return the unpacked root.

    Raises:
        SlurmUnavailable: ``apt-get``/``dpkg`` are missing or the packages
            cannot be downloaded (no package index reachable).
    """
    root = osp.join(cache, 'root')
    if osp.isfile(osp.join(root, 'usr', 'sbin', 'slurmctld-wlm')):
        return root
    for tool in ('apt-get', 'dpkg'):
        if shutil.which(tool) is None:
            raise SlurmUnavailable(f'{tool} not found: the Slurm packages '
                                   f'are fetched from Debian\'s archive')
    debs = osp.join(cache, 'debs')
    os.makedirs(debs, exist_ok=True)
    try:
        got = subprocess.run(['apt-get', 'download', *PACKAGES], cwd=debs,
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable('apt-get download timed out after 300 s')
    if got.returncode != 0:
        last = (got.stderr.strip().splitlines() or ['no output'])[-1]
        raise SlurmUnavailable(f'apt-get download {" ".join(PACKAGES)} '
                               f'failed: {last}')
    tmp = root + '.partial'
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(glob.glob(osp.join(debs, '*.deb'))):
        subprocess.run(['dpkg', '-x', deb, tmp], check=True)
    os.replace(tmp, root)
    return root


def _slurm_conf(root: str, state: str, ports: Dict[str, int], cpus: int,
                gpus: int, memory_mb: int) -> str:
    return f"""\
ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['d']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PluginDir={root}/usr/lib/x86_64-linux-gnu/slurm-wlm
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ReturnToService=2
KillWait=5
MinJobAge=600
MailProg=/bin/true
SchedulerParameters=sched_interval=2
MaxArraySize=1001
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} \
Gres=gpu:{gpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """A running single-node Slurm cluster (controller and node daemon).

    Args:
        state_dir: Where the config, spool, logs and pid files go.
        cache: Where the packages are downloaded and unpacked.
        cpus: CPUs the node offers (default: this machine's).
        gpus: Fake GPUs the node offers.
    """

    def __init__(self, state_dir: str, cache: str = DEFAULT_CACHE,
                 cpus: Optional[int] = None, gpus: int = 2) -> None:
        self.state_dir = osp.abspath(state_dir)
        self.cache = cache
        self.cpus = cpus or os.cpu_count() or 1
        self.gpus = gpus
        self.root = ''
        self.procs: List[subprocess.Popen] = []

    @property
    def conf(self) -> str:
        return osp.join(self.state_dir, 'slurm.conf')

    def env(self, base: Optional[dict] = None) -> dict:
        """``base`` (default: this process's) with Slurm's tools usable."""
        env = dict(os.environ if base is None else base)
        libs = [osp.join(self.root, d) for d in LIB_DIRS]
        env['LD_LIBRARY_PATH'] = ':'.join(
            libs + [p for p in [env.get('LD_LIBRARY_PATH')] if p])
        env['PATH'] = ':'.join([osp.join(self.root, 'usr', 'bin'),
                                env.get('PATH', '')])
        env['SLURM_CONF'] = self.conf
        return env

    def start(self, timeout_s: float = 60.0) -> 'LocalSlurm':
        """Unpack (once), write the config, start both daemons, wait for
        the node to take jobs.

        Raises:
            SlurmUnavailable: naming the step that failed and its log.
        """
        if os.geteuid() != 0:
            raise SlurmUnavailable('the local cluster runs its daemons as '
                                   'root; this process is not root')
        self.root = unpack_packages(self.cache)
        for sub in ('ctld', 'd'):
            os.makedirs(osp.join(self.state_dir, sub), exist_ok=True)
        ports = dict(ctld=_free_port(), d=_free_port())
        with open(self.conf, 'w') as f:
            f.write(_slurm_conf(self.root, self.state_dir, ports, self.cpus,
                                self.gpus, memory_mb=8192))
        with open(osp.join(self.state_dir, 'gres.conf'), 'w') as f:
            f.write(f'NodeName=localhost Name=gpu Count={self.gpus}\n')
        env = self.env()
        sbin = osp.join(self.root, 'usr', 'sbin')
        commands = [
            [osp.join(sbin, 'slurmctld-wlm'), '-D', '-i', '-f', self.conf],
            [osp.join(sbin, 'slurmd-wlm'), '-D', '-N', 'localhost', '-f',
             self.conf, '-d', osp.join(sbin, 'slurmstepd-wlm')]]
        for name, command in zip(('slurmctld', 'slurmd'), commands):
            log = open(osp.join(self.state_dir, f'{name}.out'), 'w')
            self.procs.append(subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        with open(osp.join(self.state_dir, STATE), 'w') as f:
            json.dump(dict(root=self.root, pids=[p.pid for p in self.procs],
                           ports=ports), f)
        try:
            self._wait_idle(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ''
        while time.monotonic() < deadline:
            for proc, name in zip(self.procs, ('slurmctld', 'slurmd')):
                if proc.poll() is not None:
                    raise SlurmUnavailable(
                        f'{name} exited with status {proc.returncode}; see '
                        f'{osp.join(self.state_dir, name + ".log")} and '
                        f'{name}.out')
            try:
                state = self.run(['sinfo', '-h', '-N', '-o', '%T'],
                                 timeout=10).stdout.strip()
            except subprocess.TimeoutExpired:
                state = 'no answer'
            if state == 'idle':
                # slurm.conf's Gres= for a GRES without device files is lost
                # when slurmd registers; set at run time, it stays.
                self.run(['scontrol', 'update', 'NodeName=localhost',
                          f'Gres=gpu:{self.gpus}'], timeout=10, check=True)
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f'the node did not become idle within '
                               f'{timeout_s:.0f} s (sinfo says {state!r}); '
                               f'see {self.state_dir}/*.log')

    def run(self, command: List[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a Slurm client command (``squeue``, ``scontrol``...)."""
        return subprocess.run(command, env=self.env(), capture_output=True,
                              text=True, **kwargs)

    def stop(self) -> None:
        """Cancel every job, then stop both daemons (SIGKILL if need be)."""
        if self.procs and self.procs[0].poll() is None:
            try:
                self.run(['scancel', '--full', '--user', 'root'], timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    left = self.run(['squeue', '-h', '-o', '%i %T'],
                                    timeout=10).stdout.strip()
                    if not left:
                        break
                    if os.environ.get('LOCAL_SLURM_DEBUG'):
                        print(f'local_slurm: waiting for {left}')
                    time.sleep(0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for proc in reversed(self.procs):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(10)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.procs = []

    def __enter__(self) -> 'LocalSlurm':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('action', choices=['up', 'env', 'down'])
    parser.add_argument('state_dir')
    parser.add_argument('--cpus', type=int, default=None)
    parser.add_argument('--gpus', type=int, default=2)
    args = parser.parse_args()
    cluster = LocalSlurm(args.state_dir, cpus=args.cpus, gpus=args.gpus)
    state_file = osp.join(cluster.state_dir, STATE)
    if args.action == 'up':
        try:
            cluster.start()
        except SlurmUnavailable as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        # The daemons outlive this command; `down` stops them.
        cluster.procs = []
    elif not osp.isfile(state_file):
        print(f'error: {state_file}: no cluster was started there',
              file=sys.stderr)
        return 1
    else:
        with open(state_file) as f:
            state = json.load(f)
        cluster.root = state['root']
        if args.action == 'down':
            try:
                cluster.run(['scancel', '--full', '--user', 'root'],
                            timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass  # the controller is gone already
            for pid in reversed(state['pids']):
                _stop(pid)
            return 0
    libs = ':'.join(osp.join(cluster.root, d) for d in LIB_DIRS)
    print(f'export PATH="{osp.join(cluster.root, "usr", "bin")}:$PATH"')
    print(f'export LD_LIBRARY_PATH="{libs}:$LD_LIBRARY_PATH"')
    print(f'export SLURM_CONF="{cluster.conf}"')
    return 0


if __name__ == '__main__':
    sys.exit(main())
