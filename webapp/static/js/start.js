// The start page: renders each process's start form (form-js), sends its data with the business key to the
// server (which checks who may start and validates the values), and shows the server's errors at the fields.
(function () {
  'use strict';

  function fieldsByKey(form) {
    const byKey = {};
    for (const field of form.get('formFieldRegistry').getAll()) {
      if (field.key) byKey[field.key] = field;
    }
    return byKey;
  }

  function showServerErrors(section, form, errors) {
    const byKey = fieldsByKey(form);
    const shown = {};
    for (const [key, message] of Object.entries(errors || {})) {
      if (byKey[key]) shown[byKey[key].id] = [message];
    }
    if (Object.keys(shown).length) form._setState({ errors: { ...form._getState().errors, ...shown } });
    // the list above the form repeats them for fields the form does not show
    section.querySelectorAll('.server-errors li').forEach((li) => {
      if (byKey[li.dataset.field]) li.classList.add('shown-at-field');
    });
    const list = section.querySelector('.server-errors');
    if (list && !list.querySelector('li:not(.shown-at-field)')) list.hidden = true;
  }

  function currentData(form) {
    if (!form) return {};
    const data = { ...(form.submit().data || {}) };
    // read-only, disabled and computed fields are shown, never sent: the server refuses them
    for (const [key, field] of Object.entries(fieldsByKey(form))) {
      if (field.type === 'expression' || field.readonly || field.disabled) delete data[key];
    }
    return data;
  }

  async function setUp(section) {
    const config = JSON.parse(section.querySelector('.start-config').textContent);
    const host = section.querySelector('.form-host');
    const startForm = section.querySelector('.start-form');
    let form = null;
    let sending = false;
    startForm.addEventListener('submit', (event) => {
      if (sending) { event.preventDefault(); return; }
      section.querySelector('.data-field').value = JSON.stringify(currentData(form));
      sending = true;  // a second click while the first is on its way starts nothing
      startForm.querySelectorAll('button[type=submit]').forEach((b) => {
        b.setAttribute('aria-disabled', 'true');
        b.classList.add('busy');
      });
    });
    if (!config.form) return;
    form = new window.GmpflowForm.Form({ container: host, debounce: false });
    await form.importSchema(config.form, config.data || {});
    form.on('submit', () => {});  // form-js submits on Enter; the page's own button decides
    // after the fields' own first validation, so the server's words win
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    showServerErrors(section, form, config.errors);
    // after a refusal the page opens at the process whose start was refused
    if (Object.keys(config.errors || {}).length) {
      const first = host.querySelector('.fjs-has-errors input, .fjs-has-errors textarea, .fjs-has-errors select')
        || host.querySelector('input, textarea, select');
      if (first) first.focus();
    }
  }

  const sections = Array.from(document.querySelectorAll('[data-start-form]'));
  Promise.all(sections.map((section) => setUp(section).catch((error) => {
    section.querySelector('.form-host').textContent = 'The form could not be shown: ' + error.message;
  }))).then(() => { document.body.dataset.formReady = 'true'; });
}());
