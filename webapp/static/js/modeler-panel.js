// The modeler's side panel: gmpflow's extension properties of the selected BPMN element, edited without XML.
//
// SpiffWorkflow's extension elements stay generic moddle elements (bpmn-js keeps unknown extension
// elements intact): `spiffworkflow:properties` with `spiffworkflow:property name value` children, and
// `spiffworkflow:serviceTaskOperator id resultVariable` with `spiffworkflow:parameters` /
// `spiffworkflow:parameter id type value`. Everything else in extensionElements is left alone.
(function () {
  'use strict';
  const SPIFF = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
  const HUMAN = ['bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:Task'];

  function values(bo) {
    return (bo.extensionElements && bo.extensionElements.get('values')) || [];
  }

  function findExt(bo, type) {
    return values(bo).find((v) => v.$type === type);
  }

  function ensureExt(moddle, bo, type, attrs) {
    if (!bo.extensionElements) {
      bo.extensionElements = moddle.create('bpmn:ExtensionElements', { values: [] });
      bo.extensionElements.$parent = bo;
    }
    let el = findExt(bo, type);
    if (!el) {
      el = moddle.createAny(type, SPIFF, attrs || {});
      el.$parent = bo.extensionElements;
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

  function child(el, type, attr, value) {
    return (el && el.$children || []).find((c) => c.$type === type && (attr === undefined || c[attr] === value));
  }

  function getProperty(bo, name) {
    const prop = child(findExt(bo, 'spiffworkflow:properties'), 'spiffworkflow:property', 'name', name);
    return prop ? (prop.value || '') : '';
  }

  function setProperty(moddle, bo, name, value) {
    let props = findExt(bo, 'spiffworkflow:properties');
    if (!value) {
      if (props) {
        props.$children = (props.$children || []).filter((c) => c.name !== name);
        if (!props.$children.length) removeExt(bo, props);
      }
      return;
    }
    props = props || ensureExt(moddle, bo, 'spiffworkflow:properties');
    props.$children = props.$children || [];
    let prop = child(props, 'spiffworkflow:property', 'name', name);
    if (!prop) {
      prop = moddle.createAny('spiffworkflow:property', SPIFF, { name, value });
      prop.$parent = props;
      props.$children.push(prop);
    } else {
      prop.value = value;
    }
  }

  function getOperator(bo) {
    const op = findExt(bo, 'spiffworkflow:serviceTaskOperator');
    if (!op) return null;
    const params = {};
    for (const p of (child(op, 'spiffworkflow:parameters') || {}).$children || []) params[p.id] = p.value || '';
    return { id: op.id || '', resultVariable: op.resultVariable || '', params };
  }

  /** Write the operator `name` with `params` ({id: expression}) per the element template's bindings. */
  function setOperator(moddle, bo, template, resultVariable, params) {
    const old = findExt(bo, 'spiffworkflow:serviceTaskOperator');
    if (old) removeExt(bo, old);
    if (!template) return;
    const attrs = { id: template.name };
    if (resultVariable) attrs.resultVariable = resultVariable;
    const op = ensureExt(moddle, bo, 'spiffworkflow:serviceTaskOperator', attrs);
    const holder = moddle.createAny('spiffworkflow:parameters', SPIFF, {});
    holder.$parent = op;
    holder.$children = [];
    for (const p of template.properties) {
      if (!p.binding || p.binding.type !== 'spiffworkflow:parameter') continue;
      const value = params[p.binding.name];
      if (value === undefined || value === '') continue;
      const param = moddle.createAny('spiffworkflow:parameter', SPIFF,
        { id: p.binding.name, type: p.binding.parameterType || 'any', value });
      param.$parent = holder;
      holder.$children.push(param);
    }
    op.$children = [holder];
  }

  // -- the panel's HTML, built with DOM calls (no inline handlers, CSP-safe) ------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = v; else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids) if (kid) el.append(kid);
    return el;
  }

  function field(id, label, control, hint) {
    control.id = id;
    return h('div', { class: 'prop-field' }, h('label', { for: id, text: label }), control,
      hint ? h('small', { class: 'muted', text: hint }) : null);
  }

  function select(options, current) {
    const el = h('select');
    const known = options.map((o) => o.value);
    if (current && !known.includes(current)) options = options.concat([{ value: current, label: current + ' (unknown)' }]);
    for (const o of options) el.append(h('option', { value: o.value, selected: o.value === current, text: o.label }));
    return el;
  }

  /**
   * The panel for `modeler` in `container`. `options`: {forms: [ids], meanings: [..], templates: [..],
   * readOnly, onChange()}.
   */
  const GATEWAYS = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway'];

  function PropertiesPanel(modeler, container, options) {
    const moddle = modeler.get('moddle');
    const modeling = modeler.get('modeling');
    let current = null;

    function changed() { if (options.onChange) options.onChange(); }

    function render(element) {
      current = element;
      container.replaceChildren();
      if (!element || element.type === 'label') {
        container.append(h('p', { class: 'muted', text: 'Select an element of the diagram.' }));
        return;
      }
      const bo = element.businessObject;
      container.dataset.element = bo.id;
      container.append(h('p', { class: 'prop-type' }, h('span', { text: bo.$type.replace('bpmn:', '') + ' ' }),
        h('code', { text: bo.id })));
      const name = h('input', { type: 'text', value: bo.name || '', disabled: options.readOnly });
      name.addEventListener('change', () => { modeling.updateLabel(element, name.value); changed(); });
      container.append(field('prop-name', 'Name', name));

      if (HUMAN.includes(bo.$type)) {
        const form = select([{ value: '', label: '— no form —' }]
          .concat(options.forms.map((f) => ({ value: f, label: f }))), getProperty(bo, 'formId'));
        form.addEventListener('change', () => { setProperty(moddle, bo, 'formId', form.value); changed(); });
        container.append(field('prop-formId', 'Form', form, 'The form-js form the performer fills in.'));

        const meaning = select([{ value: '', label: '— no signature —' }]
          .concat(options.meanings.map((m) => ({ value: m, label: m }))), getProperty(bo, 'signature.meaning'));
        meaning.addEventListener('change', () => {
          setProperty(moddle, bo, 'signature.meaning', meaning.value); changed();
        });
        container.append(field('prop-meaning', 'Signature meaning', meaning,
          'Completing the task needs an electronic signature with this meaning.'));

        const distinct = h('input', { type: 'text', value: getProperty(bo, 'signature.distinctFrom'),
          placeholder: 'initiator, performer:taskId', disabled: options.readOnly });
        distinct.addEventListener('change', () => {
          setProperty(moddle, bo, 'signature.distinctFrom', distinct.value.trim()); changed();
        });
        container.append(field('prop-distinct', 'Four eyes: signer differs from', distinct,
          'initiator, performer:<taskId> or signers:<taskId>, comma separated.'));

        const instructions = h('textarea', { rows: 5, disabled: options.readOnly });
        instructions.value = getProperty(bo, 'instructions');
        instructions.addEventListener('change', () => {
          setProperty(moddle, bo, 'instructions', instructions.value.trim()); changed();
        });
        container.append(field('prop-instructions', 'Instructions (markdown)', instructions));
      }

      if (bo.$type === 'bpmn:SequenceFlow' && bo.sourceRef && GATEWAYS.includes(bo.sourceRef.$type)) renderCondition(element);
      if (bo.$type === 'bpmn:ServiceTask') renderOperator(bo);
      if (options.readOnly) container.querySelectorAll('select, input, textarea').forEach((el) => { el.disabled = true; });
    }

    /** A gateway's outgoing flow: its condition, a Python expression (the expression's own id is kept). */
    function renderCondition(element) {
      const bo = element.businessObject;
      const input = h('input', { type: 'text', value: (bo.conditionExpression && bo.conditionExpression.body) || '',
        placeholder: 'e.g. approved == True' });
      input.addEventListener('change', () => {
        const body = input.value.trim();
        if (body && bo.conditionExpression) modeling.updateModdleProperties(element, bo.conditionExpression, { body });
        else modeling.updateProperties(element, { conditionExpression: body ? moddle.create('bpmn:FormalExpression', { body }) : undefined });
        changed();
      });
      container.append(field('prop-condition', 'Condition', input,
        'A Python expression over the process variables; the flow is taken when it is true. Empty: always (or the default flow).'));
    }

    function renderOperator(bo) {
      const now = getOperator(bo) || { id: '', resultVariable: '', params: {} };
      const op = select([{ value: '', label: '— no operation —' }]
        .concat(options.templates.map((t) => ({ value: t.name, label: t.name }))), now.id);
      container.append(field('prop-operation', 'Connector operation', op));
      const template = options.templates.find((t) => t.name === now.id);
      if (template && template.description) container.append(h('p', { class: 'muted small', text: template.description }));
      const result = h('input', { type: 'text', value: now.resultVariable, placeholder: 'e.g. result' });
      container.append(field('prop-result', 'Result variable', result));
      const inputs = {};
      for (const p of (template ? template.properties : [])) {
        if (!p.binding || p.binding.type !== 'spiffworkflow:parameter') continue;
        const pid = 'prop-param-' + p.binding.name;
        let input;
        if (p.type === 'Dropdown') {
          input = select([{ value: '', label: '—' }].concat(p.choices.map((c) => ({ value: c.value, label: c.name }))),
            now.params[p.binding.name] || '');
        } else {
          input = h('input', { type: 'text', value: now.params[p.binding.name] || '',
            placeholder: 'expression, e.g. order_id or \'text\'' });
        }
        inputs[p.binding.name] = input;
        const required = p.constraints && p.constraints.notEmpty ? ' *' : '';
        container.append(field(pid, p.label + required, input, p.description));
      }
      const write = () => {
        const chosen = options.templates.find((t) => t.name === op.value);
        const params = {};
        for (const [k, input] of Object.entries(inputs)) params[k] = input.value.trim();
        if (chosen && chosen.name !== now.id) {
          for (const [k, v] of Object.entries(now.params)) if (!(k in params)) params[k] = v;
        }
        setOperator(moddle, bo, chosen, result.value.trim(), params);
        changed();
      };
      op.addEventListener('change', () => { write(); render(current); });
      result.addEventListener('change', write);
      for (const input of Object.values(inputs)) input.addEventListener('change', write);
    }

    modeler.on('selection.changed', (e) => render(e.newSelection.length === 1 ? e.newSelection[0] : null));
    modeler.on('element.changed', (e) => {
      if (current && e.element === current && !container.contains(document.activeElement)) render(current);
    });
    render(null);
    return { render, getProperty, getOperator };
  }

  window.GmpflowPanel = { PropertiesPanel, getProperty, setProperty, getOperator, setOperator };
}());
