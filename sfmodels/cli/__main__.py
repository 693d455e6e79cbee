"""``python -m sfmodels.cli``: the same as the ``sfmodels`` command."""

from . import main

raise SystemExit(main())
