"""Everything that talks to Temporal: contract, client, reference workflows, worker, simulator."""
