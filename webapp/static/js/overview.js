// The process overview: the version's diagram with counts per element (active work, open incidents).
(function () {
  'use strict';
  const el = document.getElementById('diagram');
  const config = JSON.parse(document.getElementById('overview-config').textContent);
  function badge(cls, n, title) {
    const span = document.createElement('span');
    span.className = 'count ' + cls;
    span.textContent = String(n);
    span.title = title;
    return span;
  }
  window.GmpflowViewer.showDiagram(el, config.xml, {}).then((viewer) => {
    const overlays = viewer.get('overlays');
    const registry = viewer.get('elementRegistry');
    for (const [id, c] of Object.entries(config.counts || {})) {
      if (!registry.get(id)) continue;
      const box = document.createElement('div');
      box.className = 'count-badges';
      box.dataset.element = id;
      const active = (c.tasks || 0) + (c.jobs || 0);
      if (active) box.append(badge('count-active', active, active + ' active (open tasks and pending jobs)'));
      if (c.incidents) box.append(badge('count-incidents', c.incidents, c.incidents + ' open incident(s)'));
      overlays.add(id, 'counts', { position: { bottom: 12, left: -8 }, html: box });
      viewer.get('canvas').addMarker(id, c.incidents ? 'gmp-failed' : 'gmp-active');
    }
    el.dataset.rendered = 'true';
  }).catch((error) => {
    el.classList.add('diagram-missing');
    el.textContent = 'The diagram cannot be shown: ' + error.message + ' (the model needs a BPMN diagram section, BPMNDI).';
    el.dataset.rendered = 'error';
  });
}());
