"""Master data: golden records of typed, versioned data (products, BoMs, routings, materials,
equipment, qualifications, recipes/SOPs) declared as JSON Schema files.

Modules: ``types`` (schema files → stored type versions), ``validation`` (schema, ``x-key`` and
``x-ref`` checks with errors by JSON pointer), ``records`` (records, drafts, review), ``effective``
(``make_effective`` for change control, ``effective_at``), ``diff``, ``importer``, ``service`` (the
units of work behind ``Gmpflow.masterdata``).
"""

from engine.masterdata.effective import effective_at, make_effective

__all__ = ["effective_at", "make_effective"]
