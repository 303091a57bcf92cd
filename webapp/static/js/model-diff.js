// A process change on its approvers' task page: the version in force and the proposed one side by side,
// elements added (green), removed (red) and changed (amber) marked on each (bpmn-js viewer, no inline script).
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('model-diff-config').textContent);
  const marks = config.marks || {};
  function markers(kinds) {
    const found = {};
    for (const kind of kinds) for (const id of marks[kind] || []) found[id] = 'gmp-' + kind;
    return found;
  }
  function show(id, xml, kinds) {
    const el = document.getElementById(id);
    if (!el) return;
    if (!xml) { el.textContent = 'No version in force: everything is new.'; el.dataset.rendered = 'none'; return; }
    window.GmpflowViewer.showDiagram(el, xml, {}).then((viewer) => {
      // a changed id need not be drawn (the lane set, the process inside a pool, a form field): mark
      // what the diagram shows, or a new process's first version could not be shown at all
      const registry = viewer.get('elementRegistry');
      const canvas = viewer.get('canvas');
      for (const [elementId, cls] of Object.entries(markers(kinds))) {
        if (registry.get(elementId)) canvas.addMarker(elementId, cls);
      }
      el.dataset.rendered = 'true';
    }).catch((error) => {
      el.classList.add('diagram-missing');
      el.textContent = 'The diagram cannot be shown: ' + error.message;
      el.dataset.rendered = 'error';
    });
  }
  show('diagram-before', config.before, ['removed', 'changed']);
  show('diagram-after', config.after, ['added', 'changed']);
}());
