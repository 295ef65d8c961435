"""Test and benchmark support that stands on relmgr: fakes, a contract stub, servers, ports."""
