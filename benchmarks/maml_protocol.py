"""The MAML paper's half-cheetah protocol end to end through the trainer (a GPU job).

A thin wrapper over ``python -m jaxmeta bench --preset maml_protocol``: every flag of ``bench``
applies (``--iterations``, ``--seeds``, ``--set FIELD=VALUE``, ``--record``, ...).
"""

import sys

from jaxmeta.bench import main

if __name__ == "__main__":
    sys.exit(main(["--preset", "maml_protocol", *sys.argv[1:]]))
