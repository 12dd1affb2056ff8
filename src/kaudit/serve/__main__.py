"""`python -m kaudit.serve serve|token|webhook-config|certs …`: the serve commands on their own
(the same click commands `kaudit` registers)."""

from __future__ import annotations

import sys

from kaudit.cli.main import _Root
from kaudit.cli.serve import COMMANDS


def main() -> None:
    group = _Root(name="kaudit", help="kaudit serve commands")
    for name, command in COMMANDS.items():
        group.add_command(command, name)
    sys.exit(group.main(prog_name="kaudit", standalone_mode=True))


if __name__ == "__main__":
    main()
