"""The reference ERP + MES counterpart: a small WSGI app speaking B2MML V0701 over HTTP (MES side) and a
JSON order store (ERP side). It is a counterpart, not a mock: connectors reach it over real HTTP."""
