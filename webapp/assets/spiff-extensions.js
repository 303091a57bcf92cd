// SpiffWorkflow's extension elements as gmpflow writes them, changed through bpmn-js's command stack.
//
// They stay generic moddle elements (bpmn-js keeps unknown extension elements intact; a moddle descriptor
// for the namespace would drop every spiffworkflow element it does not declare): `spiffworkflow:properties`
// with `spiffworkflow:property name value` children, and `spiffworkflow:serviceTaskOperator id
// resultVariable` with `spiffworkflow:parameters` / `spiffworkflow:parameter id type value` (and e.g.
// `spiffworkflow:retry`, kept). Everything else in extensionElements is left alone.
//
// Every change runs as the command `gmpflow.updateExtensions`: it snapshots the element's spiffworkflow
// extension elements before the change and puts them back on undo, so Ctrl+Z / Ctrl+Y (the diagram's and
// the properties panel's) undo and redo a property edit like any diagram edit.

const SPIFF = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
export const COMMAND = 'gmpflow.updateExtensions';

function values(bo) {
  return (bo.extensionElements && bo.extensionElements.get('values')) || [];
}

function findExt(bo, type) {
  return values(bo).find((v) => v.$type === type);
}

function children(el) {
  return (el && el.$children) || [];
}

function child(el, type, attr, value) {
  return children(el).find((c) => c.$type === type && (attr === undefined || c[attr] === value));
}

function createAny(moddle, type, parent, attrs) {
  const el = moddle.createAny(type, SPIFF, attrs || {});
  el.$parent = parent;
  return el;
}

function ensureExt(moddle, bo, type, attrs) {
  if (!bo.extensionElements) {
    bo.extensionElements = moddle.create('bpmn:ExtensionElements', { values: [] });
    bo.extensionElements.$parent = bo;
  }
  let el = findExt(bo, type);
  if (!el) {
    el = createAny(moddle, type, bo.extensionElements, attrs);
    el.$children = [];
    bo.extensionElements.get('values').push(el);
  }
  return el;
}

function removeExt(bo, el) {
  if (!bo.extensionElements) return;
  const list = bo.extensionElements.get('values');
  const at = list.indexOf(el);
  if (at >= 0) list.splice(at, 1);
  if (!list.length) bo.extensionElements = undefined;
}

/** The `spiffworkflow:property` elements of `bo`, in document order, as [{name, value}]. */
export function listProperties(bo) {
  return children(findExt(bo, 'spiffworkflow:properties'))
    .filter((c) => c.$type === 'spiffworkflow:property')
    .map((c) => ({ name: c.name || '', value: c.value || '' }));
}

export function getProperty(bo, name) {
  const prop = child(findExt(bo, 'spiffworkflow:properties'), 'spiffworkflow:property', 'name', name);
  return prop ? (prop.value || '') : '';
}

/** Set (or, with an empty value, remove) the property `name`; `rename` renames an existing one in place. */
export function setProperty(moddle, bo, name, value, rename) {
  let props = findExt(bo, 'spiffworkflow:properties');
  const existing = child(props, 'spiffworkflow:property', 'name', name);
  if (rename !== undefined && existing) {
    existing.name = rename;
    return;
  }
  if (!value) {
    if (props) {
      props.$children = children(props).filter((c) => c !== existing);
      if (!props.$children.length) removeExt(bo, props);
    }
    return;
  }
  props = props || ensureExt(moddle, bo, 'spiffworkflow:properties');
  props.$children = props.$children || [];
  if (existing) existing.value = value;
  else props.$children.push(createAny(moddle, 'spiffworkflow:property', props, { name, value }));
}

export function getOperator(bo) {
  const op = findExt(bo, 'spiffworkflow:serviceTaskOperator');
  if (!op) return null;
  const params = {};
  for (const p of children(child(op, 'spiffworkflow:parameters'))) params[p.id] = p.value || '';
  return { id: op.id || '', resultVariable: op.resultVariable || '', params };
}

/**
 * Write the operator of `template` (a gmpflow element template) with `params` ({id: expression}) per the
 * template's `spiffworkflow:parameter` bindings; no template removes the operator. While the operation stays,
 * the file's parameters keep their order and type, and one the template does not name stays as it is.
 * Other children of the operator (its `spiffworkflow:retry`) stay.
 */
export function setOperator(moddle, bo, template, resultVariable, params) {
  const old = findExt(bo, 'spiffworkflow:serviceTaskOperator');
  if (!template) {
    if (old) removeExt(bo, old);
    return;
  }
  const same = old && old.id === template.name;
  const op = old || ensureExt(moddle, bo, 'spiffworkflow:serviceTaskOperator', {});
  op.id = template.name;
  if (resultVariable) op.resultVariable = resultVariable; else delete op.resultVariable;
  const bound = {};
  for (const p of template.properties) {
    if (p.binding && p.binding.type === 'spiffworkflow:parameter') bound[p.binding.name] = p.binding.parameterType || 'any';
  }
  const holder = createAny(moddle, 'spiffworkflow:parameters', op, {});
  holder.$children = [];
  const add = (id, type) => {
    const value = params[id];
    if (value !== undefined && value !== '') {
      holder.$children.push(createAny(moddle, 'spiffworkflow:parameter', holder, { id, type, value }));
    }
  };
  // the operation stays: its parameters stay in their order and type (one the template does not name, too)
  const existing = same ? children(child(op, 'spiffworkflow:parameters')) : [];
  for (const p of existing) {
    if (p.id in bound) add(p.id, p.type || bound[p.id]); else holder.$children.push(p);
  }
  for (const [id, type] of Object.entries(bound)) if (!existing.some((p) => p.id === id)) add(id, type);
  const kept = children(op);
  const at = kept.findIndex((c) => c.$type === 'spiffworkflow:parameters');
  op.$children = at >= 0 ? kept.map((c, i) => (i === at ? holder : c)) : [holder].concat(kept);
}

// -- the command: snapshot, change, put back ---------------------------------------------------------------
function snapshot(bo) {
  const ext = bo.extensionElements;
  const shots = [];
  const walk = (o) => {
    if (!o || typeof o !== 'object' || !String(o.$type || '').startsWith('spiffworkflow:')) return;
    shots.push({ o, attrs: Object.assign({}, o), kids: o.$children ? o.$children.slice() : undefined });
    children(o).forEach(walk);
  };
  values(bo).forEach(walk);
  return { ext, values: ext ? ext.get('values').slice() : null, shots };
}

function restore(bo, snap) {
  for (const { o, attrs, kids } of snap.shots) {
    for (const key of Object.keys(o)) if (!(key in attrs)) delete o[key];
    Object.assign(o, attrs);
    if (kids) o.$children = kids.slice(); else delete o.$children;
  }
  bo.extensionElements = snap.ext;
  if (snap.ext) snap.ext.get('values').splice(0, Infinity, ...snap.values);
}

/**
 * context: {element, change(moddle, businessObject)}. `change` finds what it changes by name each time
 * it runs (a redo runs it again on the state the undo put back).
 */
export function UpdateExtensionsHandler(moddle) {
  this.execute = (context) => {
    const bo = context.element.businessObject;
    context.snapshot = snapshot(bo);
    context.change(moddle, bo);
    return [context.element];
  };
  this.revert = (context) => {
    restore(context.element.businessObject, context.snapshot);
    return [context.element];
  };
}
UpdateExtensionsHandler.$inject = ['moddle'];
