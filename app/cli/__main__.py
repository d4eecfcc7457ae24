"""``python -m app.cli``: the same as the ``kg`` command."""

from app.cli import main

raise SystemExit(main())
