// Read-only BPMN diagram with pan/zoom, used on instance pages to show where the tokens are.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

/**
 * Render `xml` into `el`. `markers` maps element ids to CSS classes
 * (e.g. {Task_Approve: 'gmp-active'}); the promise resolves to the viewer.
 */
async function showDiagram(el, xml, markers = {}) {
  const viewer = new NavigatedViewer({ container: el });
  await viewer.importXML(xml);
  const canvas = viewer.get('canvas');
  for (const [id, cls] of Object.entries(markers)) {
    for (const c of [].concat(cls)) canvas.addMarker(id, c);
  }
  canvas.zoom('fit-viewport');
  return viewer;
}

window.GmpflowViewer = { showDiagram, NavigatedViewer };
