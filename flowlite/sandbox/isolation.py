"""How a sandbox worker is launched: its command line, environment and isolation level.

Two levels, best first:

``namespaces``
    The worker runs under bubblewrap in new PID, IPC, UTS, cgroup and (unless the job may use
    the network) network namespaces, in a new mount namespace that holds only read-only
    system directories, the Python installation, the import roots the worker needs, a fresh
    /proc and /dev, and a small private tmpfs as its working directory. The data directory,
    the home directory and the rest of the host file system are not there.
``process``
    The worker is a plain child process: scrubbed environment, private working directory,
    closed file descriptors, resource limits, seccomp and, when flowlite runs as root, the
    ``nobody`` user. It shares the host's file system (as ``nobody``) and network namespace
    (seccomp denies ``socket()`` when the network is off).

Both levels also drop to ``nobody`` when flowlite runs as root: the worker does it itself, after
its imports (see :mod:`flowlite.sandbox.worker`), so that a Python installed somewhere only
root can read still starts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NOBODY", "Launcher", "import_roots"]

#: uid and gid of ``nobody``, which workers run as when flowlite runs as root
NOBODY = 65534

#: run by ``python -I -S -B -c``; argv[1:] are the import roots, the worker's directory first
_BOOTSTRAP = "import sys;sys.path[:0]=sys.argv[1:];import worker;worker.main()"

#: In a frozen (PyInstaller) binary ``sys.executable`` is flowlite itself: its entry point
#: (packaging/flowlite_entry.py) runs the same bootstrap when this is its first argument.
FROZEN_WORKER_ARG = "__sandbox-worker__"
#: PyInstaller's variables that make a child of a one-file binary reuse its unpacked directory
_FROZEN_ENV = ("_PYI_ARCHIVE_FILE", "_PYI_APPLICATION_HOME_DIR", "_PYI_PARENT_PROCESS_LEVEL")

#: the worker's working directory inside bubblewrap: a private, size-limited tmpfs
SANDBOX_TMP = "/tmp"  # noqa: S108 - not the host's /tmp

#: files from /etc a Python process may need (dynamic linker, time zone, name resolution, TLS)
_ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
)

_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _root_of(location: str) -> str | None:
    """The sys.path entry a file or package directory was found under."""
    best: str | None = None
    for entry in sys.path:
        if not entry:
            continue
        entry = os.path.abspath(entry)
        if location.startswith(entry + os.sep) and (best is None or len(entry) > len(best)):
            best = entry
    return best


def import_roots(modules: tuple[str, ...]) -> list[str]:
    """The sys.path entries holding these modules, beyond what ``python -I -S`` has anyway."""
    stdlib = sysconfig.get_path("stdlib")
    platstdlib = sysconfig.get_path("platstdlib")
    default = {
        os.path.realpath(p) for p in (stdlib, platstdlib, os.path.join(platstdlib, "lib-dynload"))
    }
    roots: list[str] = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name.partition(".")[0])
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        locations = list(spec.submodule_search_locations or [])
        if spec.origin and os.path.isabs(spec.origin):
            locations.append(spec.origin)
        for location in locations:
            root = _root_of(os.path.abspath(location))
            if root is not None and root not in roots and os.path.realpath(root) not in default:
                roots.append(root)
    return roots


@dataclass(frozen=True)
class Launcher:
    """Builds the command that starts one worker at one isolation level."""

    level: str  # "namespaces" or "process"
    bwrap: str | None
    python: str
    #: import roots for the worker, its own directory first
    paths: tuple[str, ...]
    #: whether flowlite runs as root, so the worker must drop to nobody
    root: bool
    tmp_bytes: int

    @classmethod
    def create(
        cls, level: str, bwrap: str | None, modules: tuple[str, ...], tmp_bytes: int
    ) -> Launcher:
        worker_dir = str(Path(__file__).resolve().parent)
        roots = import_roots(("msgspec", "pyseccomp", *modules))
        paths = [worker_dir, *(p for p in roots if p != worker_dir)]
        return cls(
            level=level,
            bwrap=bwrap,
            python=sys.executable,
            paths=tuple(paths),
            root=os.geteuid() == 0,
            tmp_bytes=tmp_bytes,
        )

    @property
    def workdir_inside(self) -> str | None:
        """The worker's working directory as it sees it (``None``: a host temp directory)."""
        return SANDBOX_TMP if self.level == "namespaces" else None

    def env(self, workdir: str) -> dict[str, str]:
        """A fresh environment: nothing of flowlite's (no FLOWLITE_*, secrets, database URL)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": workdir,
            "TMPDIR": workdir,
        }
        if getattr(sys, "frozen", False):
            # without them a one-file binary unpacks itself again (~50 MB) into the workdir
            env.update({k: os.environ[k] for k in _FROZEN_ENV if k in os.environ})
        return env

    def command(self, network: bool) -> list[str]:
        python = [self.python, "-I", "-S", "-B", "-c", _BOOTSTRAP, *self.paths]
        if getattr(sys, "frozen", False):
            python = [self.python, FROZEN_WORKER_ARG, *self.paths]
        if self.level == "process":
            return python
        assert self.bwrap is not None
        return [self.bwrap, *self._bwrap_options(network), "--", *python]

    def _bwrap_options(self, network: bool) -> list[str]:
        options = [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--hostname",
            "flowlite-sandbox",
        ]
        if not network:
            options.append("--unshare-net")
        if self.root:
            # No user namespace: the worker then drops to the real nobody, and keeps only the
            # capabilities it needs for that until it does.
            options += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            options += ["--unshare-user", "--disable-userns"]
        options += ["--ro-bind", "/usr", "/usr"]
        for path in _SYSTEM_DIRS:
            if os.path.islink(path):
                options += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                options += ["--ro-bind", path, path]
        options += ["--perms", "0755", "--dir", "/etc"]
        for path in _ETC:
            options += ["--ro-bind-try", path, path]
        options += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(self.tmp_bytes),
            "--tmpfs",
            SANDBOX_TMP,
            "--chdir",
            SANDBOX_TMP,
        ]
        # after the tmpfs, which would hide what lives under /tmp: a one-file binary's unpacked
        # directory (sys._MEIPASS, /tmp/_MEIxxxxxx) is the Python installation of its workers
        options += self._python_binds()
        return options

    def _python_binds(self) -> list[str]:
        """Read-only binds of the Python installation and the import roots, at their paths."""
        wanted: set[str] = set()
        for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
            wanted.add(os.path.abspath(path))
            wanted.add(os.path.realpath(path))
        executable = os.path.abspath(self.python)
        wanted.add(os.path.dirname(os.path.realpath(executable)))
        wanted.update(os.path.abspath(p) for p in self.paths)
        covered = ("/usr",)
        binds: list[str] = []
        made: set[str] = set()
        options: list[str] = []
        for path in sorted(wanted, key=len):
            if not os.path.isdir(path) or any(
                path == c or path.startswith(c + os.sep) for c in (*covered, *binds)
            ):
                continue
            # bubblewrap makes missing parents mode 0700; nobody must be able to walk them.
            for parent in reversed(Path(path).parents[:-1] if path != "/" else ()):
                text = str(parent)
                inside = any(text == b or text.startswith(b + os.sep) for b in binds)
                if text not in made and not inside:
                    options += ["--perms", "0755", "--dir", text]
                    made.add(text)
            options += ["--ro-bind", os.path.realpath(path), path]
            binds.append(path)
        return options

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "level": self.level,
            "bwrap": self.bwrap,
            "python": self.python,
            "uid": NOBODY if self.root else os.getuid(),
        }
        if self.level == "namespaces":
            info["namespaces"] = ["mount", "pid", "ipc", "uts", "cgroup", "net (unless allowed)"]
            if not self.root:
                info["namespaces"].append("user")
        return info
