// Renders form-js JSON forms on task pages.
import { Form } from '@bpmn-io/form-js';

/** Render `schema` with `data` into `el`; the promise resolves to the Form (listen to 'submit'). */
async function renderForm(el, schema, data = {}) {
  const form = new Form({ container: el });
  await form.importSchema(schema, data);
  return form;
}

window.GmpflowForm = { Form, renderForm };
