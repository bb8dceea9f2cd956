"""Boot a prepared node as a QEMU virtual machine with a real kernel and udev, and run one scenario.

The container harness shares the host's kernel, so kernel modules, USB devices and udev events stay
out of its reach. Here the node's own layers are stacked over one more cached layer, Debian's
generic kernel (`linux-image-amd64`: the cloud kernel has no USB support) installed into the Debian
root, and written into an ext4 image the VM boots from. QEMU runs under TCG: this kind of machine
has no usable KVM. The layout is the container's, so the same scenarios and checklib work:
- the scenario runs as `panoseti-systest.service` after multi-user.target, with
  SuccessAction=poweroff-force and FailureAction=poweroff-force;
- /result is a 9p share of a host directory: checks.jsonl, journal.json and the verdict marker.
QEMU exits 0 after any poweroff, so a boot counts as passed only through `exit-status`, a marker the
unit's ExecStopPost writes with the scenario's own exit status; a boot without it has failed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from .checks import read_checks
from .container import PAYLOAD_DIR, BootResult, console_process, install_scenario, scenario_files
from .rootfs import Node, cache_key, cached, debian_root, overlay, run, run_in

log = logging.getLogger("panoseti.systest")

#: Tools a VM boot needs on the host, and the Debian package each comes from.
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mkfs.ext4": "e2fsprogs"}
KERNEL_PACKAGE = "linux-image-amd64"
#: What the initrd must hold to mount the root: the rest loads from the root itself. A short list
#: (MODULES=list) makes a 6 MB initrd instead of 35 MB and reaches the root 2 s sooner under TCG.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4")
#: Module trees no test VM loads (graphics, sound, cameras, Wi-Fi, InfiniBand): a third of the
#: kernel's 400 MB, left out of the layer so every image is smaller and quicker to write.
UNUSED_MODULES = (
    "kernel/sound",
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/infiniband",
    "kernel/net/wireless",
    "kernel/net/mac80211",
    "kernel/net/bluetooth",
)
#: Directory of the VM's own payload (the USB gadget helper, VM scenarios).
VM_PAYLOAD = Path(__file__).resolve().parents[1] / "payload" / "vm"
MEMORY_MB = 1024
CPUS = 2
#: Seconds of a boot outside the scenario (kernel and userspace boot, poweroff) under TCG on a
#: busy 2-core machine, where boot alone measured 16 to 18 s: the scenario's RuntimeMaxSec is the
#: boot's timeout less this much, so the scenario's own limit fires before QEMU is killed.
_BOOT_ALLOWANCE = 90.0

#: The VM's lines of the test unit: /result is mounted first, the scenario's end powers the guest
#: off, and on its way out the unit writes the journal and the verdict marker to /result.
_VM_UNIT = "RequiresMountsFor=/result\nSuccessAction=poweroff-force\nFailureAction=poweroff-force\n"
_VM_SERVICE = """\
ExecStopPost=/bin/sh -c 'journalctl -o json --no-pager > /result/journal.json; \
echo "$$EXIT_CODE $$EXIT_STATUS $$SERVICE_RESULT" > /result/exit-status'
"""

_FSTAB = """\
/dev/vda / ext4 rw,relatime 0 0
result /result 9p trans=virtio,version=9p2000.L,msize=262144 0 0
"""


def kernel_layer(root: Path) -> Path:
    """The cached layer over the Debian `root` that holds the kernel, its modules and a small initrd.

    Keyed by the root's cache entry and the kernel recipe, so a new root gets a new kernel layer.
    The initrd configuration is written before the package is installed, so the package's own
    trigger builds the small initrd (no second mkinitramfs run).
    """
    recipe = (KERNEL_PACKAGE, INITRD_MODULES, UNUSED_MODULES)

    def build(upper: Path) -> None:
        with overlay([root], upper) as merged:
            conf = merged / "etc/initramfs-tools/conf.d/panoseti-vm.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text("MODULES=list\nCOMPRESS=gzip\n")
            modules = merged / "usr/share/initramfs-tools/modules.d/panoseti-vm"
            modules.parent.mkdir(parents=True, exist_ok=True)
            modules.write_text("".join(f"{name}\n" for name in INITRD_MODULES))
            log.info("installing %s into the VM kernel layer (about a minute)", KERNEL_PACKAGE)
            run_in(
                merged,
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", KERNEL_PACKAGE],
                network=True,
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )
            run_in(merged, ["apt-get", "clean"])
            version = _kernel_version(merged)
            for tree in UNUSED_MODULES:
                shutil.rmtree(merged / "lib/modules" / version / tree, ignore_errors=True)
            run_in(merged, ["depmod", version])

    return cached("vmkernel", cache_key("vmkernel", root.name, recipe), build)


def _kernel_version(root: Path) -> str:
    """The version of the one kernel in `root`, from the /vmlinuz symlink the package made."""
    target = os.readlink(root / "vmlinuz")
    return Path(target).name.removeprefix("vmlinuz-")


def boot_files(layer: Path) -> tuple[Path, Path]:
    """The kernel image and initrd inside a kernel layer (QEMU loads them directly)."""
    version = _kernel_version(layer)
    return layer / f"boot/vmlinuz-{version}", layer / f"boot/initrd.img-{version}"


def vm_layers(node: Node) -> tuple[Path, ...]:
    """The node's layers with the kernel layer right above the Debian root they all sit on."""
    root = debian_root()
    if node.layers[-1] != root:
        raise RuntimeError(
            f"the node's lowest layer {node.layers[-1]} is not the Debian root {root}"
        )
    return (*node.layers[:-1], kernel_layer(root), root)


def boot_vm(
    node: Node,
    scenario: Path,
    *,
    files: Mapping[str, bytes | Path] | None = None,
    timeout: float = 300.0,
    append: str = "",
) -> BootResult:
    """Boot `node` as a VM, run `scenario` as the test unit, and collect the result.

    As container.boot: a .py scenario runs with the venv's python, anything else with /bin/sh, with
    checklib next to it and the VM payload (tests/system/payload/vm) in the same directory;
    `files` maps absolute guest paths to contents or host files. `append` is added to the kernel
    command line. `timeout` bounds QEMU (coreutils `timeout` inside this call, never around it).
    """
    layers = vm_layers(node)
    vmlinuz, initrd = boot_files(layers[-2])
    run_dir = Path(mkdtemp(prefix=f"vm-{scenario.stem}-", dir=node.scratch))
    result_dir = run_dir / "result"
    result_dir.mkdir()
    image = run_dir / "root.img"
    placed: dict[str, bytes | Path] = {
        PAYLOAD_DIR: VM_PAYLOAD,
        **scenario_files(
            scenario, max(10, int(timeout - _BOOT_ALLOWANCE)), unit=_VM_UNIT, service=_VM_SERVICE
        ),
        "/etc/fstab": _FSTAB.encode(),
        "/etc/hostname": b"panoseti-vm\n",
        **(files or {}),
    }
    t0 = time.monotonic()
    with overlay(layers, run_dir / "upper") as root:
        install_scenario(root, placed)
        (root / "result").mkdir(exist_ok=True)
        make_image(root, image)
    image_seconds = time.monotonic() - t0
    try:
        qemu_rc, seconds = _run_qemu(
            vmlinuz, initrd, image, result_dir, run_dir / "console.log", timeout, append
        )
    finally:
        image.unlink(missing_ok=True)  # hundreds of MB, rebuilt in seconds
    console = (run_dir / "console.log").read_text(errors="replace")
    returncode = verdict(qemu_rc, result_dir / "exit-status")
    log.info(
        "VM boot of %s: image %.1f s, QEMU %.1f s (exit %d), verdict %d",
        scenario.name,
        image_seconds,
        seconds,
        qemu_rc,
        returncode,
    )
    return BootResult(
        returncode=returncode,
        console=console,
        journal=_read_journal(result_dir / "journal.json"),
        checks=read_checks(result_dir / "checks.jsonl"),
        run_dir=run_dir,
        seconds=seconds,
    )


def print_timings(result: BootResult) -> None:
    """The guest's step timings (result/timings.json, if the scenario wrote them) and QEMU's
    total, into the test's output (`pytest -rP` shows them)."""
    timings = result.run_dir / "result" / "timings.json"
    if timings.exists():
        print("guest timings (s):", json.dumps(json.loads(timings.read_text()), indent=1))
    print(f"QEMU start to power-off: {result.seconds:.1f} s")


def make_image(root: Path, image: Path) -> None:
    """An ext4 image holding the tree `root`, with room to spare for what the boot writes."""
    used = int(run(["du", "-s", "-x", "--block-size=1M", str(root)]).split()[0])
    size_mb = used + used // 4 + 256
    run(["mkfs.ext4", "-q", "-F", "-L", "vmroot", "-d", str(root), str(image), f"{size_mb}M"])


def verdict(qemu_rc: int, marker: Path) -> int:
    """The boot's exit status: the scenario's, from the marker its unit wrote on the way out.

    QEMU's own status is used only when it is not 0 (killed by the timeout, failed to start): 0
    means only that the guest powered off, whatever happened inside. No marker is failure (125).
    """
    if qemu_rc != 0:
        return qemu_rc
    if not marker.exists():
        log.warning("no verdict marker %s: the scenario never finished", marker)
        return 125
    code, status, result = [*marker.read_text().split(), "", "", ""][:3]
    log.info("scenario ended: %s %s (%s)", code, status, result)
    return int(status) if code == "exited" and status.isdigit() else 1


def qemu_argv(
    vmlinuz: Path, initrd: Path, image: Path, result_dir: Path, append: str = ""
) -> list[str]:
    """The QEMU command line of a test VM (recipe B of the system-testing notes).

    TCG only (KVM hangs on these machines). `-cpu max`: numpy 2.4's wheels need x86-64-v2 (SSSE3,
    SSE4.2, POPCNT), which the default qemu64 model lacks. `-snapshot` keeps the image unchanged,
    `panic=-1` with `-no-reboot` turns a kernel panic into QEMU exiting.
    """
    cmdline = f"console=ttyS0 root=/dev/vda rw panic=-1 {append}".strip()
    return [
        "qemu-system-x86_64",
        "-machine", "q35,accel=tcg",
        "-cpu", "max",
        "-smp", str(CPUS),
        "-m", str(MEMORY_MB),
        "-nographic",
        "-no-reboot",
        "-kernel", str(vmlinuz),
        "-initrd", str(initrd),
        "-append", cmdline,
        "-drive", f"file={image},format=raw,if=virtio",
        "-snapshot",
        "-virtfs", f"local,path={result_dir},mount_tag=result,security_model=none,id=result",
        "-nic", "none",
    ]  # fmt: skip


def _run_qemu(
    vmlinuz: Path,
    initrd: Path,
    image: Path,
    result_dir: Path,
    console: Path,
    timeout: float,
    append: str,
) -> tuple[int, float]:
    """Run QEMU until the guest powers off; (QEMU's exit status, seconds).

    `timeout` (coreutils) sends QEMU SIGTERM after `timeout` seconds and SIGKILL 10 s later (exit
    124 or 137). Python's own limit is a last resort that kills the whole process group, because
    killing `timeout` alone would leave QEMU running as an orphan.
    """
    argv = [
        "timeout",
        "--kill-after=10",
        str(timeout),
        *qemu_argv(vmlinuz, initrd, image, result_dir, append),
    ]
    t0 = time.monotonic()
    with console_process(argv, console) as proc:
        try:
            returncode = proc.wait(timeout=timeout + 30)
        except BaseException:  # our own limit, or pytest-timeout / Ctrl-C interrupting the wait
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return returncode, time.monotonic() - t0


def _read_journal(path: Path) -> list[dict[str, Any]]:
    """The entries of the guest's journal, as its `journalctl -o json` wrote them to /result."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
