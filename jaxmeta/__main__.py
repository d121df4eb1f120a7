import sys

from jaxmeta.cli import main

sys.exit(main())
