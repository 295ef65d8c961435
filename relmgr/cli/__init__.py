"""The `relmgr` command: its subcommands, `relmgr dev` and the embedded dev server."""
