"""ISA-95 B2MML V0701 messages (``messages``) and the ``mes.*`` operations that send them over HTTP."""
