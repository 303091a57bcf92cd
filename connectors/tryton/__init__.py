"""Tryton ERP (8.x) over JSON-RPC: production orders, their state, reported production, lot disposition."""
