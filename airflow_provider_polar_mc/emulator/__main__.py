"""``python -m airflow_provider_polar_mc.emulator``: same as the ``polar-mc-emulator`` command."""

import sys

from .cli import main

sys.exit(main())
