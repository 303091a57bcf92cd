"""Process definitions: bundles of BPMN, DMN and form files; parse, lint, hash, deploy, version."""
