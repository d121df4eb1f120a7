"""MAML's 2D navigation throughput at the paper's sizes, compile time, second-order memory vs K.

A thin wrapper over ``python -m jaxmeta bench --preset maml_throughput``: every flag of ``bench``
applies (``--iterations``, ``--seeds``, ``--set FIELD=VALUE``, ``--record``, ...).
"""

import sys

from jaxmeta.bench import main

if __name__ == "__main__":
    sys.exit(main(["--preset", "maml_throughput", *sys.argv[1:]]))
