"""TESP vs MAML meta-training throughput on reacher2_target at the small scale.

A thin wrapper over ``python -m jaxmeta bench --preset tesp_throughput``: every flag of ``bench``
applies (``--iterations``, ``--seeds``, ``--set FIELD=VALUE``, ``--record``, ...).
"""

import sys

from jaxmeta.bench import main

if __name__ == "__main__":
    sys.exit(main(["--preset", "tesp_throughput", *sys.argv[1:]]))
