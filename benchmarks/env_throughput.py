"""Raw simulator throughput of every task family at batch 1, 64 and 1024.

A thin wrapper over ``python -m jaxmeta bench --preset env_throughput``: every flag of ``bench``
applies (``--iterations``, ``--seeds``, ``--set FIELD=VALUE``, ``--record``, ...).
"""

import sys

from jaxmeta.bench import main

if __name__ == "__main__":
    sys.exit(main(["--preset", "env_throughput", *sys.argv[1:]]))
