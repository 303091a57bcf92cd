// The modeler page: one tab per file of the bundle (BPMN in bpmn-js, DMN in dmn-js, forms in the form-js
// editor), bpmn-js-properties-panel beside each diagram (gmpflow's properties from its provider in
// webapp/assets/gmpflow-properties.js; every edit on the diagram's command stack, so Ctrl+Z / Ctrl+Y undo and
// redo it), "Check" and "Save as draft" (the engine's lint problems marked on the diagram with markers and
// overlays, and listed with element ids).
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('modeler-config').textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const tabs = document.getElementById('file-tabs');
  const editorsEl = document.getElementById('editors');
  const panelEl = document.getElementById('props-body');
  const statusEl = document.getElementById('save-status');
  const problemsCard = document.getElementById('problems-card');
  const problemsEl = document.getElementById('problems');
  const EXPORTER = 'gmpflow modeler';
  const FORM_DEBOUNCE_MS = 300;
  // the properties panel's groups open from the start (the library's default: all closed)
  const OPEN_GROUPS = Object.fromEntries(['general', 'gmpflow-task', 'gmpflow-start', 'gmpflow-message',
    'gmpflow-operator', 'gmpflow-condition', 'gmpflow-other'].map((id) => [id, { open: true }]));

  const files = Object.assign({}, cfg.files.bpmn, cfg.files.dmn, cfg.files.form);
  const kinds = {};
  for (const kind of ['bpmn', 'dmn', 'form']) for (const name of Object.keys(cfg.files[kind])) kinds[name] = kind;
  const editors = {}; // name -> {kind, el, instance, dirty}
  const formIds = Object.entries(cfg.files.form).map(([name, text]) => {
    try { return JSON.parse(text).id || name.split('.')[0]; } catch (e) { return name.split('.')[0]; }
  });

  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = 'save-status ' + (kind || '');
  }

  function markDirty(name) {
    editors[name].dirty = true;
    document.body.dataset.dirty = 'true';
  }

  // the library's own entries, where gmpflow gives them a meaning
  const DESCRIPTIONS = {
    name: (element) => (element.type === 'bpmn:Lane'
      ? 'A role: only its holders may claim, complete or sign the tasks in this lane (and start the process '
        + 'from its start event when that names no start.roles).' : undefined),
  };

  /** `#props-body[data-element]`: the id of the element the panel shows (none: the process). */
  function showSelected(ed) {
    const selected = ed.kind === 'bpmn' ? ed.instance.get('selection').get() : [];
    if (selected.length === 1) panelEl.dataset.element = selected[0].businessObject.id;
    else delete panelEl.dataset.element;
  }

  async function open(name) {
    for (const [other, ed] of Object.entries(editors)) {
      ed.el.hidden = other !== name;
      if (ed.panelEl) ed.panelEl.hidden = other !== name;
    }
    for (const tab of tabs.children) tab.setAttribute('aria-selected', String(tab.dataset.file === name));
    document.getElementById('props-panel').hidden = kinds[name] !== 'bpmn';
    if (editors[name]) { showSelected(editors[name]); return editors[name]; }
    const el = document.createElement('div');
    el.className = 'editor editor-' + kinds[name];
    el.dataset.file = name;
    el.setAttribute('role', 'tabpanel');
    editorsEl.append(el);
    const ed = { kind: kinds[name], el, instance: null, dirty: false };
    editors[name] = ed;
    if (ed.kind === 'bpmn') {
      ed.panelEl = document.createElement('div');
      ed.panelEl.className = 'props-of-file';
      ed.panelEl.dataset.file = name;
      panelEl.append(ed.panelEl);
      ed.instance = new window.GmpflowModeler.Modeler({
        container: el,
        additionalModules: window.GmpflowModeler.panelModules,
        propertiesPanel: { parent: ed.panelEl, layout: { groups: OPEN_GROUPS }, description: DESCRIPTIONS },
        gmpflow: { forms: formIds, meanings: cfg.meanings, templates: cfg.templates, readOnly: !cfg.canEdit },
      });
      await ed.instance.importXML(files[name]);
      ed.instance.get('canvas').zoom('fit-viewport');
      ed.instance.on('commandStack.changed', () => markDirty(name));
      ed.instance.on('selection.changed', () => showSelected(ed));
      showSelected(ed);
    } else if (ed.kind === 'dmn') {
      // no input debounce: a save right after typing in a cell keeps the last keystrokes
      ed.instance = new window.GmpflowDmn.DmnModeler({ container: el, common: { debounceInput: false } });
      await ed.instance.importXML(files[name]);
      const watched = new Set();
      const watch = () => {
        const viewer = ed.instance.getActiveViewer();
        if (viewer && !watched.has(viewer)) {
          watched.add(viewer);
          viewer.get('eventBus').on('elements.changed', () => markDirty(name));
        }
      };
      ed.instance.on('views.changed', watch);
      watch();
    } else {
      // the form editor's panel needs its input debounce (without it typing loses characters): save waits it out
      ed.instance = new window.GmpflowFormEditor.FormEditor({ container: el, debounce: FORM_DEBOUNCE_MS });
      await ed.instance.importSchema(JSON.parse(files[name]));
      ed.instance.on('changed', () => markDirty(name));
    }
    return ed;
  }

  /** The bundle as {name: text}: edited files exported, the others exactly as loaded. */
  async function collect() {
    const out = Object.assign({}, files);
    for (const [name, ed] of Object.entries(editors)) {
      if (!ed.dirty) continue;
      if (ed.kind === 'bpmn') {
        const definitions = ed.instance.getDefinitions();
        definitions.exporter = EXPORTER;
        definitions.exporterVersion = '1';
        out[name] = (await ed.instance.saveXML({ format: true })).xml;
      } else if (ed.kind === 'dmn') {
        out[name] = (await ed.instance.saveXML({ format: true })).xml;
      } else {
        out[name] = JSON.stringify(ed.instance.saveSchema(), null, 2) + '\n';
      }
    }
    return out;
  }

  function clearProblems() {
    problemsEl.replaceChildren();
    problemsCard.hidden = true;
    for (const ed of Object.values(editors)) {
      if (ed.kind !== 'bpmn') continue;
      ed.instance.get('overlays').remove({ type: 'lint' });
      const canvas = ed.instance.get('canvas');
      for (const el of ed.instance.get('elementRegistry').getAll()) canvas.removeMarker(el.id, 'gmp-lint-error');
    }
  }

  function showProblems(problems) {
    clearProblems();
    if (!problems.length) return;
    problemsCard.hidden = false;
    for (const p of problems) {
      const where = [p.file, p.line ? 'line ' + p.line : null].filter(Boolean).join(', ');
      const li = document.createElement('li');
      li.dataset.elementId = p.element_id || '';
      li.className = 'problem';
      if (p.element_id) {
        const go = document.createElement('button');
        go.type = 'button';
        go.className = 'link';
        go.textContent = p.element_id;
        go.addEventListener('click', () => select(p.file, p.element_id));
        li.append(go, ' ');
      }
      li.append(document.createTextNode(p.message));
      if (where) { const s = document.createElement('small'); s.className = 'muted'; s.textContent = ' (' + where + ')'; li.append(s); }
      problemsEl.append(li);
      const ed = editors[p.file] || (p.file ? null : editors[Object.keys(cfg.files.bpmn)[0]]);
      if (!ed || ed.kind !== 'bpmn' || !p.element_id) continue;
      const shape = ed.instance.get('elementRegistry').get(p.element_id);
      if (!shape) continue;
      ed.instance.get('canvas').addMarker(p.element_id, 'gmp-lint-error');
      const badge = document.createElement('span');
      badge.className = 'lint-badge';
      badge.title = p.message;
      badge.textContent = '!';
      ed.instance.get('overlays').add(p.element_id, 'lint', { position: { top: -10, right: 10 }, html: badge });
    }
  }

  async function select(file, elementId) {
    const name = kinds[file] === 'bpmn' ? file : Object.keys(cfg.files.bpmn)[0];
    const ed = await open(name);
    const shape = ed.instance.get('elementRegistry').get(elementId);
    if (!shape) return;
    ed.instance.get('selection').select(shape);
    ed.instance.get('canvas').scrollToElement(shape);
  }

  async function post(url) {
    if (Object.values(editors).some((ed) => ed.kind === 'form')) {
      await new Promise((resolve) => setTimeout(resolve, FORM_DEBOUNCE_MS + 50));  // the last typed edit lands
    }
    const response = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf },
      body: JSON.stringify({ files: await collect() }),
    });
    let body = {};
    try { body = await response.json(); } catch (e) { body = { problems: [{ message: 'The server answered ' + response.status }] }; }
    return { status: response.status, body };
  }

  async function check() {
    say('Checking…');
    const { body } = await post(cfg.lintUrl);
    showProblems(body.problems || []);
    say(body.ok ? 'No problems found.' : (body.problems || []).length + ' problem(s) found.', body.ok ? 'ok' : 'bad');
    document.body.dataset.lint = body.ok ? 'ok' : 'problems';
  }

  async function save() {
    const button = document.getElementById('save-button');
    button.disabled = true;
    say('Saving…');
    try {
      const { status, body } = await post(cfg.saveUrl);
      if (status === 200 && body.ok) {
        clearProblems();
        statusEl.replaceChildren();
        statusEl.className = 'save-status ok';
        statusEl.append(body.created ? 'Saved as draft ' : 'Nothing changed: this content is ');
        const link = document.createElement('a');
        link.href = body.url;
        link.id = 'saved-version';
        link.textContent = body.key + ' v' + body.version + ' (' + body.status.replace('_', ' ') + ')';
        statusEl.append(link, '.');
        document.body.dataset.saved = String(body.id);
      } else {
        showProblems(body.problems || []);
        say('Not saved: ' + (body.problems || []).length + ' problem(s); see the list and the marked elements.', 'bad');
        document.body.dataset.saved = 'problems';
      }
    } finally {
      button.disabled = false;
    }
  }

  for (const name of Object.keys(files)) {
    const tab = document.createElement('button');
    tab.type = 'button';
    tab.setAttribute('role', 'tab');
    tab.dataset.file = name;
    tab.className = 'tab tab-' + kinds[name];
    tab.textContent = name;
    tab.addEventListener('click', () => open(name).catch(fail));
    tabs.append(tab);
  }
  function fail(error) {
    say('The editor could not open the file: ' + error.message, 'bad');
    document.body.dataset.modelerReady = 'error';
  }
  if (cfg.canEdit) {
    document.getElementById('save-button').addEventListener('click', () => save().catch((e) => say(e.message, 'bad')));
    document.getElementById('lint-button').addEventListener('click', () => check().catch((e) => say(e.message, 'bad')));
  }
  window.GmpflowModelerPage = { editors, open, collect, select };
  open(Object.keys(cfg.files.bpmn)[0]).then(() => { document.body.dataset.modelerReady = 'true'; }).catch(fail);
}());
