"""The entry point of the frozen `flowlite` binary (PyInstaller).

In a frozen binary ``sys.executable`` is the binary itself, so the sandbox pool starts its
workers as ``flowlite __sandbox-worker__ ROOT...`` (see ``flowlite.sandbox.isolation``). That case
is recognised here before anything else is imported, and runs the worker the way the unfrozen
bootstrap does: ``worker.py`` (shipped as a plain file next to the frozen package) imported as a
top-level module from the given roots, with only the standard library and msgspec loaded.
Everything else goes to the click CLI.
"""

import sys

#: the hidden first argument that turns the binary into a sandbox worker (same as isolation.py)
SANDBOX_WORKER_ARG = "__sandbox-worker__"


def _run() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == SANDBOX_WORKER_ARG:
        sys.dont_write_bytecode = True
        sys.path[:0] = sys.argv[2:]
        import worker  # type: ignore[import-not-found]

        worker.main()
        return
    from flowlite.cli import main

    main(prog_name="flowlite")


if __name__ == "__main__":
    _run()
