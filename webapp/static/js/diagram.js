// The instance page's diagram: bpmn-js viewer with completed, active and failed elements marked.
(function () {
  'use strict';
  const el = document.getElementById('diagram');
  const config = JSON.parse(document.getElementById('diagram-config').textContent);
  const markers = {};
  for (const [id, state] of Object.entries(config.markers || {})) markers[id] = 'gmp-' + state;
  window.GmpflowViewer.showDiagram(el, config.xml, markers).then(() => {
    el.dataset.rendered = 'true';
  }).catch((error) => {
    el.classList.add('diagram-missing');
    el.textContent = 'The diagram cannot be shown: ' + error.message
      + ' (the model needs a BPMN diagram section, BPMNDI).';
    el.dataset.rendered = 'error';
  });
}());
