"""`mornet` / `python -m mornet`. The agent's commands skip the server's command line, so the
agent process stays small on a Raspberry Pi."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"] and sys.argv[2:3] not in ([], ["--help"], ["-h"]):
        from mornet.agent.cli import main as agent_main

        sys.exit(agent_main(sys.argv[2:]))
    from mornet.cli import app

    app(prog_name="mornet")


if __name__ == "__main__":
    main()
