"""gmpflow's GMP content: change control, order release, SOP execution and the batch record, material lots;
with the models (``processes/``, ``forms/``) and master-data schemas (``masterdata/``) they run on."""
