"""``python -m kakehashi`` runs the command line."""

from kakehashi.cli import main

raise SystemExit(main())
