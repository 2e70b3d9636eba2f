"""An emulated Raspberry Pi for the tests, set up without root and without touching the system.

Debian's packages come through a private apt configuration (its own sources list, package lists
and archives, all under the cache; the system's apt sources and dpkg database are never changed)
and are unpacked with dpkg-deb, never installed. The emulator is qemu-user from Debian 13 (trixie):
from QEMU 8.2 on, user mode emulates /proc/cpuinfo for ARM guests; with bookworm's qemu 7.2 the
guest saw the host's, and LiteRT's CPU detection crashed on it.

    python -m tests.pi.emulator --setup [--site S]          build (or find) the cached environment
    python -m tests.pi.emulator [--site S] [--cpu C] ARGS   run the emulated python3 with ARGS

The cache is $LSTM_EDGE_PI_CACHE (default ~/.cache/lstm-edge/pi); each part is keyed by what it
holds, so a second run only starts the emulator. Packages come from the Debian mirror the system's
apt already uses, or from $LSTM_EDGE_DEBIAN_MIRROR. Exit status 77: no package index can be
reached (or this is not a Debian-like system), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
QEMU_SUITE = "trixie"  # qemu-user 10.0, statically linked; trixie's qemu-user-static is only a transitional package
UNAVAILABLE = 77


class EmulatorUnavailable(Exception):
    """The emulated Pi cannot be set up on this machine (the reason is the message)."""


@dataclass(frozen=True)
class Guest:
    """A Raspberry Pi OS as Debian packages: the release, the architecture, its Python."""

    suite: str
    arch: str  # Debian's name for it
    python: str
    qemu: str  # the user-mode emulator binary
    cpu: str  # QEMU_CPU: the board's core
    packages: tuple[str, ...]
    wheel_platforms: tuple[str, ...]  # what pip may take for it

    @property
    def name(self) -> str:
        return f"{self.suite}-{self.arch}"


# Raspberry Pi OS 64-bit (bookworm) on a Pi 4: Debian 12 arm64, Python 3.11, Cortex-A72.
BOOKWORM_ARM64 = Guest(
    suite="bookworm", arch="arm64", python="python3.11", qemu="qemu-aarch64", cpu="cortex-a72",
    packages=("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "zlib1g", "libexpat1",
              "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libstdc++6", "libgcc-s1", "libsqlite3-0", "libuuid1",
              "libncursesw6", "libtinfo6", "libreadline8", "libcrypt1"),
    wheel_platforms=("manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
                     "manylinux2014_aarch64"),
)

# What the edge needs on the device, per interpreter; never TensorFlow.
SITES = {
    "tflite-runtime": ("tflite-runtime==2.14.0", "numpy<2", "pillow"),
    "litert": ("ai-edge-litert==2.3.0", "numpy<2", "pillow"),
}


@dataclass(frozen=True)
class Emulator:
    """One guest Python with one site of packages, run under qemu-user."""

    guest: Guest
    qemu: Path
    root: Path
    site: Path

    def command(self, *args: str) -> list[str]:
        return [str(self.qemu), "-L", str(self.root), str(self.root / "usr" / "bin" / self.guest.python), *args]

    def environment(self, cpu: str | None = None) -> dict[str, str]:
        return {**os.environ, "QEMU_CPU": cpu or self.guest.cpu, "PYTHONPATH": f"{self.site}{os.pathsep}{REPO}",
                # qemu flushes subnormals, and numpy's float limits warn about it on import: harmless
                "PYTHONWARNINGS": "ignore::UserWarning:numpy.core.getlimits"}

    def run(self, *args: str, cpu: str | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, text=True, env=self.environment(cpu),
                              timeout=timeout)


def cache_folder() -> Path:
    return Path(os.environ.get("LSTM_EDGE_PI_CACHE") or Path.home() / ".cache" / "lstm-edge" / "pi")


def setup(site: str = "tflite-runtime", guest: Guest = BOOKWORM_ARM64, cache: Path | None = None) -> Emulator:
    """Build (or find) the emulator, the guest's root and the site of packages.

    Raises:
      EmulatorUnavailable: no package index reachable, or no apt/dpkg on this machine.
      RuntimeError: something else failed (a package missing from the index, pip refused).
    """
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; choose from {', '.join(SITES)}")
    cache = cache or cache_folder()
    host = _host_architecture()
    qemu_dir = _built(cache / f"qemu-{QEMU_SUITE}-{host}",
                      lambda out: _unpack_qemu(cache, host, out))
    root = _built(cache / f"root-{guest.name}-{_digest(guest.packages)}",
                  lambda out: _unpack_guest(cache, guest, out))
    requirements = SITES[site]
    site_dir = _built(cache / f"site-{guest.name}-{site}-{_digest((*requirements, *guest.wheel_platforms))}",
                      lambda out: _pip_site(guest, requirements, out))
    return Emulator(guest, qemu_dir / guest.qemu, root, site_dir)


def _built(folder: Path, build) -> Path:
    """`folder`, built by `build(tmp)` into a temporary folder and renamed when complete."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        build(tmp)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _digest(items) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:12]


def _host_architecture() -> str:
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb") and shutil.which("dpkg")):
        raise EmulatorUnavailable("apt-get and dpkg-deb are needed to fetch Debian's packages (a Debian-like system)")
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def debian_mirror(etc_apt: str = "/etc/apt") -> str:
    """The Debian mirror this system's apt uses (or $LSTM_EDGE_DEBIAN_MIRROR)."""
    if os.environ.get("LSTM_EDGE_DEBIAN_MIRROR"):
        return os.environ["LSTM_EDGE_DEBIAN_MIRROR"].rstrip("/")
    releases = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable",
                "oldstable"}
    files = [f"{etc_apt}/sources.list", *sorted(glob.glob(f"{etc_apt}/sources.list.d/*.list")),
             *sorted(glob.glob(f"{etc_apt}/sources.list.d/*.sources"))]
    for file in files:
        try:
            text = Path(file).read_text()
        except OSError:
            continue
        entries = []
        if file.endswith(".sources"):  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                entries += [(uri, fields.get("Suites", "").split()) for uri in fields.get("URIs", "").split()]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
        for uri, suites in entries:
            if any(suite.split("-")[0] in releases and "security" not in suite for suite in suites):
                return uri.rstrip("/")
    raise EmulatorUnavailable(f"no Debian mirror in {etc_apt}'s sources; set LSTM_EDGE_DEBIAN_MIRROR to one")


def _apt_download(cache: Path, suite: str, arch: str, packages, out: Path) -> list[Path]:
    """Download `packages` of Debian `suite` for `arch` into `out` through a private apt configuration."""
    if not KEYRING.is_file():
        raise EmulatorUnavailable(f"{KEYRING} is missing (Debian package debian-archive-keyring)")
    apt = cache / "apt" / f"{suite}-{arch}"
    for folder in ("lists/partial", "archives/partial"):
        (apt / folder).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb [signed-by={KEYRING}] {debian_mirror()} {suite} main\n")
    options = ["-q", "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache::archives={apt / 'archives'}",
               "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "-o", "Dir::State::status=/dev/null",
               "-o", "Dir::Etc::Preferences=/dev/null", "-o", "Dir::Etc::PreferencesParts=/dev/null",
               "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}"]
    if os.geteuid() == 0:  # root's apt downloads as the user _apt, who cannot write into a private cache
        options += ["-o", "APT::Sandbox::User=root"]
    done = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True)
    if done.returncode != 0 or "Err:" in done.stdout:
        reason = next((line for line in (done.stdout + done.stderr).splitlines() if "Err" in line or "E:" in line),
                      f"exit {done.returncode}")
        raise EmulatorUnavailable(f"no Debian package index reachable for {suite}/{arch}: {reason.strip()}")
    done = subprocess.run(["apt-get", *options, "download", *packages], capture_output=True, text=True, cwd=out)
    if done.returncode != 0:
        raise RuntimeError(f"apt-get download of {suite}/{arch} packages failed: {done.stderr.strip()[-500:]}")
    return sorted(out.glob("*.deb"))


def _unpack_qemu(cache: Path, host: str, out: Path) -> None:
    debs = out / "debs"
    debs.mkdir()
    (deb,) = _apt_download(cache, QEMU_SUITE, host, ["qemu-user"], debs)
    # Only the two ARM emulators of the ~70 MB package are needed.
    subprocess.run(f'dpkg-deb --fsys-tarfile "{deb}" | tar -x -C "{debs}" ./usr/bin/qemu-aarch64 ./usr/bin/qemu-arm',
                   shell=True, check=True)
    for binary in ("qemu-aarch64", "qemu-arm"):
        (debs / "usr" / "bin" / binary).rename(out / binary)
    shutil.rmtree(debs)


def _unpack_guest(cache: Path, guest: Guest, out: Path) -> None:
    debs = cache / "apt" / guest.name / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    try:
        for deb in _apt_download(cache, guest.suite, guest.arch, guest.packages, debs):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    finally:
        shutil.rmtree(debs, ignore_errors=True)
    if not (out / "lib").exists():  # merged /usr (trixie): single packages leave no /lib link
        (out / "lib").symlink_to("usr/lib")


def _pip_site(guest: Guest, requirements, out: Path) -> None:
    version = re.sub(r"\D", "", guest.python)  # python3.11 -> 311
    platforms = [arg for p in guest.wheel_platforms for arg in ("--platform", p)]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--target", str(out), "--only-binary=:all:", "--implementation", "cp",
                           "--python-version", f"{version[0]}.{version[1:]}", *platforms, *requirements],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install {' '.join(requirements)} for {guest.name}: "
                           f"{done.stderr.strip()[-500:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pi.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="only build (or find) the environment")
    parser.add_argument("--site", choices=sorted(SITES), default="tflite-runtime")
    parser.add_argument("--cpu", help=f"QEMU_CPU [default: {BOOKWORM_ARM64.cpu}]")
    args, rest = parser.parse_known_args(argv)
    try:
        emulator = setup(args.site)
    except EmulatorUnavailable as e:
        print(f"tests/pi: {e}", file=sys.stderr)
        return UNAVAILABLE
    except RuntimeError as e:
        print(f"tests/pi: {e}", file=sys.stderr)
        return 1
    if args.setup:
        print(" ".join(emulator.command()))
        return 0
    return subprocess.run(emulator.command(*rest), env=emulator.environment(args.cpu)).returncode


if __name__ == "__main__":
    sys.exit(main())
