"""`python -m relmgr`: the same as the `relmgr` console script."""

try:
    from relmgr.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the (heavy) imports run: no traceback for that
    raise SystemExit(130) from None

raise SystemExit(main())
