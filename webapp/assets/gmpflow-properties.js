// gmpflow's properties in bpmn-js-properties-panel: a properties provider that adds, next to the library's
// General / Documentation groups, the extension properties the engine reads (../shared/DESIGN.md, "Models
// carry the governance"; engine/README.md) for the selected element, the connector operation of a service
// task from gmpflow's element templates, a gateway flow's condition, and every other
// `spiffworkflow:property` as a name/value list. Each edit is one command on bpmn-js's command stack.
//
// Configured with `gmpflow: {forms: [ids], meanings: [..], templates: [..], readOnly}` in the modeler's
// options.
import {
  ListGroup, SelectEntry, TextAreaEntry, TextFieldEntry,
  isSelectEntryEdited, isTextAreaEntryEdited, isTextFieldEntryEdited,
} from '@bpmn-io/properties-panel';
import { h } from '@bpmn-io/properties-panel/preact';
import { useService } from 'bpmn-js-properties-panel';
import { is, isAny } from 'bpmn-js/lib/util/ModelUtil';
import { isRedo, isUndo } from 'diagram-js/lib/features/keyboard/KeyboardUtil';
import {
  COMMAND, UpdateExtensionsHandler, getOperator, getProperty, listProperties, setOperator, setProperty,
} from './spiff-extensions.js';

const HUMAN = ['bpmn:UserTask', 'bpmn:ManualTask', 'bpmn:Task'];
const GATEWAYS = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway'];
const MESSAGE_CATCHERS = ['bpmn:StartEvent', 'bpmn:IntermediateCatchEvent', 'bpmn:BoundaryEvent'];
const LOW_PRIORITY = 500;

// -- one property, one entry -------------------------------------------------------------------------------
// [name, label, kind, description]; kind: text, area, form, meaning, boolean
const TASK = [
  ['formId', 'Form', 'form', 'The form-js form the performer fills in.'],
  ['instructions', 'Instructions (markdown)', 'area'],
  ['signature.meaning', 'Signature meaning', 'meaning',
    'Completing the task needs an electronic signature with this meaning.'],
  ['signature.distinctFrom', 'Four eyes: signer differs from', 'text',
    'initiator, all, performer:<taskId> or signers:<taskId>, comma separated.'],
  ['signature.record', 'Signed record', 'text',
    'The record the signature is bound to, e.g. batch:batch_id (its hash is stored with the signature).'],
  ['qualification.required', 'Qualification required', 'text',
    'An expression naming the qualification the performer must hold in force.'],
  ['entry.check', 'Entry check', 'text',
    'A registered entry-check operation run before the signature, e.g. sop.entry_check.'],
  ['guard', 'Guard', 'text', 'An expression over the form data that must be true to complete the task.'],
  ['guardMessage', 'Guard message', 'text', 'What the performer is told when the guard refuses the entry.'],
  ['record.lock', 'Locks the record', 'text',
    'An expression naming the record (business key) this task locks when completed; None locks nothing.'],
  ['record.unlock', 'Unlocks the record', 'text', 'An expression naming the record this task unlocks.'],
  ['candidateRoles', 'Candidate roles', 'text', 'An expression naming the role that may claim the task.'],
  ['screen', 'Screen', 'text', 'A dedicated task screen, e.g. ebr_step.'],
];
const START = [
  ['formId', 'Start form', 'form', 'The start variables are the fields of this form.'],
  ['start.roles', 'Who may start (roles)', 'text', 'Comma separated; empty: the lane\'s role, else admin only.'],
  ['record.reopen', 'Reopens a locked record', 'boolean', 'A governed reopen may act on a locked record.'],
];
const MESSAGE = [
  ['message.senders', 'Who may send the message (roles)', 'text',
    'Comma separated; empty: the lane\'s role, else integration and admin.'],
  ['message.fields', 'Message fields', 'text', 'The payload fields, comma separated (or the event\'s form).'],
];

function useGmpflow() {
  return useService('config.gmpflow') || {};
}

function useUpdate(element) {
  const commandStack = useService('commandStack');
  return (change) => commandStack.execute(COMMAND, { element, change });
}

function options(none, list, current) {
  const known = list.map((v) => ({ value: v, label: v }));
  if (current && !list.includes(current)) known.push({ value: current, label: current + ' (unknown)' });
  return [{ value: '', label: none }].concat(known);
}

function PropertyEntry(props) {
  const { element, id, name, label, kind, description } = props;
  const cfg = useGmpflow();
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const update = useUpdate(element);
  const bo = element.businessObject;
  const getValue = () => getProperty(bo, name);
  const setValue = (value) => {
    const text = (value || '').trim();
    if (text === getValue()) return;
    update((moddle, target) => setProperty(moddle, target, name, text));
  };
  const common = { element, id, label: translate(label), description, getValue, setValue,
    disabled: cfg.readOnly };
  if (kind === 'area') return h(TextAreaEntry, { ...common, debounce, rows: 4, monospace: false });
  if (kind === 'text') return h(TextFieldEntry, { ...common, debounce });
  const choices = {
    form: () => options('— no form —', cfg.forms || [], getValue()),
    meaning: () => options('— no signature —', cfg.meanings || [], getValue()),
    boolean: () => options('— no —', ['true', 'false'], getValue()),
  }[kind];
  return h(SelectEntry, { ...common, getOptions: choices });
}

function propertyEntries(prefix, list) {
  return list.map(([name, label, kind, description]) => ({
    id: `${prefix}-${name}`, name, label, kind, description, component: PropertyEntry,
    isEdited: kind === 'area' ? isTextAreaEntryEdited : kind === 'text' ? isTextFieldEntryEdited
      : isSelectEntryEdited,
  }));
}

// -- every other spiffworkflow:property, as a list ------------------------------------------------------------
function OtherField(props) {
  const { element, id, name, part } = props;
  const cfg = useGmpflow();
  const debounce = useService('debounceInput');
  const update = useUpdate(element);
  const bo = element.businessObject;
  const getValue = () => (part === 'name' ? name : getProperty(bo, name));
  const setValue = (value) => {
    const text = (value || '').trim();
    if (text === getValue() || (part === 'name' && (!text || getProperty(bo, text)))) return;
    update((moddle, target) => (part === 'name' ? setProperty(moddle, target, name, '', text)
      : setProperty(moddle, target, name, text)));
  };
  return h(TextFieldEntry, { element, id, label: part === 'name' ? 'Property name' : 'Property value',
    getValue, setValue, debounce, disabled: cfg.readOnly });
}

function otherPropertiesGroup(element, known, commandStack) {
  const bo = element.businessObject;
  const items = listProperties(bo).filter((p) => !known.has(p.name)).map((p, index) => ({
    id: `gmpflow-other-${index}`,
    label: p.name,
    entries: ['name', 'value'].map((part) => ({
      id: `gmpflow-other-${index}-${part}`, name: p.name, part, component: OtherField,
    })),
    remove: () => commandStack.execute(COMMAND, { element,
      change: (moddle, target) => setProperty(moddle, target, p.name, '') }),
  }));
  const add = (event) => {
    event.stopPropagation();
    let n = 1;
    while (getProperty(bo, `property${n}`)) n += 1;
    commandStack.execute(COMMAND, { element,
      change: (moddle, target) => setProperty(moddle, target, `property${n}`, 'value') });
  };
  return { id: 'gmpflow-other', label: 'Other properties', component: ListGroup, items, add };
}

// -- a service task's connector operation, from gmpflow's element templates -------------------------------
function OperatorEntry(props) {
  const { element, id, field, template: param } = props;
  const cfg = useGmpflow();
  const debounce = useService('debounceInput');
  const update = useUpdate(element);
  const bo = element.businessObject;
  const templates = cfg.templates || [];
  const current = () => getOperator(bo) || { id: '', resultVariable: '', params: {} };
  const getValue = () => {
    const now = current();
    return field === 'operation' ? now.id : field === 'result' ? now.resultVariable : now.params[param.binding.name] || '';
  };
  const setValue = (value) => {
    const text = (value || '').trim();
    if (text === getValue()) return;
    update((moddle, target) => {
      const now = getOperator(target) || { id: '', resultVariable: '', params: {} };
      const name = field === 'operation' ? text : now.id;
      // an operation no template knows (not registered here) keeps its parameters; only the result changes
      const chosen = templates.find((t) => t.name === name) || (field !== 'operation' && name
        ? { name, properties: [] } : undefined);
      const params = Object.assign({}, now.params);
      if (field === 'param') params[param.binding.name] = text;
      setOperator(moddle, target, chosen, field === 'result' ? text : now.resultVariable, params);
    });
  };
  const common = { element, id, getValue, setValue, disabled: cfg.readOnly };
  if (field === 'operation') {
    return h(SelectEntry, { ...common, label: 'Connector operation',
      description: (templates.find((t) => t.name === getValue()) || {}).description,
      getOptions: () => options('— no operation —', templates.map((t) => t.name), getValue()) });
  }
  if (field === 'result') return h(TextFieldEntry, { ...common, debounce, label: 'Result variable' });
  const label = param.label + (param.constraints && param.constraints.notEmpty ? ' *' : '');
  if (param.type === 'Dropdown') {
    return h(SelectEntry, { ...common, label, description: param.description,
      getOptions: () => [{ value: '', label: '—' }].concat(param.choices.map((c) => ({ value: c.value, label: c.name }))) });
  }
  return h(TextFieldEntry, { ...common, debounce, label, description: param.description });
}

function operatorGroup(element, templates) {
  const now = getOperator(element.businessObject);
  const template = now && templates.find((t) => t.name === now.id);
  const entries = [
    { id: 'gmpflow-operation', field: 'operation', component: OperatorEntry, isEdited: isSelectEntryEdited },
    { id: 'gmpflow-result', field: 'result', component: OperatorEntry, isEdited: isTextFieldEntryEdited },
  ];
  for (const p of (template ? template.properties : [])) {
    if (!p.binding || p.binding.type !== 'spiffworkflow:parameter') continue;
    entries.push({ id: `gmpflow-param-${p.binding.name}`, field: 'param', template: p, component: OperatorEntry,
      isEdited: isTextFieldEntryEdited });
  }
  return { id: 'gmpflow-operator', label: 'Connector operation', entries };
}

// -- a gateway flow's condition ------------------------------------------------------------------------------
function ConditionEntry(props) {
  const { element, id } = props;
  const cfg = useGmpflow();
  const modeling = useService('modeling');
  const moddle = useService('moddle');
  const debounce = useService('debounceInput');
  const bo = element.businessObject;
  const getValue = () => (bo.conditionExpression && bo.conditionExpression.body) || '';
  const setValue = (value) => {
    const body = (value || '').trim();
    if (body === getValue()) return;
    if (body && bo.conditionExpression) modeling.updateModdleProperties(element, bo.conditionExpression, { body });
    else {
      modeling.updateProperties(element,
        { conditionExpression: body ? moddle.create('bpmn:FormalExpression', { body }) : undefined });
    }
  };
  return h(TextFieldEntry, { element, id, label: 'Condition', getValue, setValue, debounce,
    disabled: cfg.readOnly, description: 'A Python expression over the process variables; the flow is taken '
      + 'when it is true. Empty: always (or the default flow).' });
}

// -- the provider -------------------------------------------------------------------------------------------
function hasMessage(bo) {
  return (bo.eventDefinitions || []).some((d) => is(d, 'bpmn:MessageEventDefinition'));
}

export function GmpflowPropertiesProvider(propertiesPanel, commandStack, config) {
  const templates = (config && config.templates) || [];
  this.getGroups = (element) => (groups) => {
    const bo = element.businessObject;
    const lists = [];
    if (isAny(bo, HUMAN)) lists.push(['gmpflow-task', 'gmpflow: the performer\'s step', TASK]);
    if (is(bo, 'bpmn:StartEvent')) lists.push(['gmpflow-start', 'gmpflow: who starts', START]);
    if ((isAny(bo, MESSAGE_CATCHERS) && hasMessage(bo)) || is(bo, 'bpmn:ReceiveTask')) {
      lists.push(['gmpflow-message', 'gmpflow: the message', MESSAGE]);
    }
    const known = new Set();
    for (const [id, label, list] of lists) {
      list.forEach(([name]) => known.add(name));
      groups.push({ id, label, entries: propertyEntries(id, list) });
    }
    if (is(bo, 'bpmn:ServiceTask')) groups.push(operatorGroup(element, templates));
    if (is(bo, 'bpmn:SequenceFlow') && bo.sourceRef && isAny(bo.sourceRef, GATEWAYS)) {
      groups.push({ id: 'gmpflow-condition', label: 'Condition',
        entries: [{ id: 'gmpflow-condition-body', component: ConditionEntry, isEdited: isTextFieldEntryEdited }] });
    }
    if (is(bo, 'bpmn:FlowNode')) groups.push(otherPropertiesGroup(element, known, commandStack));
    return groups;
  };
  propertiesPanel.registerProvider(LOW_PRIORITY, this);
}
GmpflowPropertiesProvider.$inject = ['propertiesPanel', 'commandStack', 'config.gmpflow'];

function registerHandler(commandStack) {
  commandStack.registerHandler(COMMAND, UpdateExtensionsHandler);
}
registerHandler.$inject = ['commandStack'];

/**
 * Ctrl+Z / Ctrl+Y (Ctrl+Shift+Z) in the panel undo and redo on the diagram's command stack. The library
 * binds these keys only when it sees `keyboard.bind`, which diagram-js 15 fires at canvas creation, before
 * the panel exists; an entry with a debounced value commits it on the same keydown, before this runs.
 */
function PanelKeys(panelConfig, commandStack) {
  const parent = panelConfig && panelConfig.parent;
  if (!parent || !parent.addEventListener) return;
  parent.addEventListener('keydown', (event) => {
    const step = isUndo(event) ? 'undo' : isRedo(event) ? 'redo' : null;
    if (!step) return;
    event.preventDefault();
    event.stopPropagation();
    commandStack[step]();
  });
}
PanelKeys.$inject = ['config.propertiesPanel', 'commandStack'];

export default {
  __init__: ['gmpflowPropertiesProvider', 'gmpflowCommands', 'gmpflowPanelKeys'],
  gmpflowPropertiesProvider: ['type', GmpflowPropertiesProvider],
  gmpflowCommands: ['type', registerHandler],
  gmpflowPanelKeys: ['type', PanelKeys],
};
